from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SHARED = TESTS.parent.parent / "shared" / "data"


@pytest.fixture
def data_dir() -> Path:
    """tests/data: small real fixtures committed with the tests."""
    return TESTS / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (SigmaHQ, Atomic Red Team, ATT&CK, DARPA TC samples); skips without it."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not present at {SHARED}")
    return SHARED
