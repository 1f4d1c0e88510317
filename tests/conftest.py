import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SHARED = TESTS.parent.parent / "shared" / "data"
SERIAL_GROUP = "serial"
"""The pytest-xdist group of the tests that must not run beside each other."""

for _size in ("COLUMNS", "LINES"):
    # Tests give the terminal size they mean (the CLI runner's env, a process's env). The
    # caller's own, or the COLUMNS=80 that GNU readline leaves in the environment pytest-xdist
    # starts its workers with, must not reach the consoles the CLI modules make on import.
    os.environ.pop(_size, None)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist with ``--dist loadgroup`` (scripts/test), the tests marked
    ``privileged`` or ``serial`` form one group: one worker runs them one after another,
    while the other workers share out the rest. The kernel audit socket, eBPF, the lab's
    namespaces, accounts and state folder, nftables and `provarmor up` are used by one test
    at a time, as in a serial run."""
    if config.pluginmanager.hasplugin("xdist"):
        for item in items:
            if item.get_closest_marker("privileged") or item.get_closest_marker("serial"):
                item.add_marker(pytest.mark.xdist_group(SERIAL_GROUP))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """xdist names each grouped test ``<id>@<group>``; with a pytest/xdist pair that loses
    the groups, a serial test would run beside the others: it fails instead."""
    if (
        item.config.getoption("loadgroup", default=False)
        and item.get_closest_marker("xdist_group")
        and not item.nodeid.endswith(f"@{SERIAL_GROUP}")
    ):
        pytest.fail(
            "pytest-xdist did not put this test in its group: this pytest and pytest-xdist "
            "do not work together (see the pin in pyproject.toml)",
            pytrace=False,
        )


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
