import contextlib
import fcntl
import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SHARED = TESTS.parent.parent / "shared" / "data"
SERIAL_GROUP = "serial"
"""The pytest-xdist group of the privileged tests: they never run beside each other."""

for _size in ("COLUMNS", "LINES"):
    # Tests give the terminal size they mean (the CLI runner's env, a process's env). The
    # caller's own, or the COLUMNS=80 that GNU readline leaves in the environment pytest-xdist
    # starts its workers with, must not reach the consoles the CLI modules make on import.
    os.environ.pop(_size, None)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist with ``--dist loadgroup`` (scripts/test), the tests marked
    ``privileged`` form one group: one worker runs them one after another, while the other
    workers share out the rest. The kernel audit socket, eBPF, the lab's namespaces, accounts
    and state folder, nftables and `provarmor up` are used by one test at a time, as in a
    serial run."""
    if config.pluginmanager.hasplugin("xdist"):
        for item in items:
            if item.get_closest_marker("privileged"):
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Under pytest-xdist, a test marked ``exclusive`` (it looks at or acts on the whole
    machine: every entry of /tmp, every incident of the host) runs with no test of another
    worker beside it: every test holds the run's lock shared, an exclusive one holds it alone
    (see :func:`run_lock`)."""
    if not hasattr(item.config, "workerinput"):
        return (yield)
    # each worker's basetemp is <the run's basetemp>/popen-<worker>
    folder = Path(item.config.option.basetemp).parent
    with run_lock(folder, exclusive=item.get_closest_marker("exclusive") is not None):
        return (yield)


@contextlib.contextmanager
def run_lock(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """The lock of one run's workers, with writer preference: a test passes ``gate`` on its
    way in, and an exclusive test keeps it closed while it waits for the tests already running
    and while it runs, so no new test starts meanwhile."""
    with (
        (folder / "exclusive.gate").open("a") as gate,
        (folder / "exclusive.lock").open("a") as lock,
    ):
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        if not exclusive:
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield  # closing the files releases the locks


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
