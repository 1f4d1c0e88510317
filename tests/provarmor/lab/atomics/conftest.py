"""Fixtures for the atomics tests: the copied Atomic Red Team files, a workspace, and a skip
for machines (or moments) where the atomics cannot run for real."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from provarmor.lab.atomics.arguments import Workspace

DATA = Path(__file__).resolve().parents[3] / "data" / "atomics"


@pytest.fixture
def atomics_data() -> Path:
    """tests/data/atomics: a few real technique files (MIT, Red Canary) and broken copies."""
    return DATA


@pytest.fixture
def workspace() -> Workspace:
    return Workspace(
        scratch="/var/lib/provarmor/lab/atomics/x/T",
        atomics="/var/lib/provarmor/lab/atomics/x/T/atomics",
    )


def sandbox_missing() -> str:
    """Why the sandbox cannot run here ('' when it can)."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2"
    from provarmor.lab.atomics.runner import lab_busy

    return lab_busy()


@pytest.fixture
def sandbox_machine() -> None:
    reason = sandbox_missing()
    if reason:
        pytest.skip(reason)
