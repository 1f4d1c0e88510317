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
LIVE_LOCK = Path("/tmp/provarmor-live.lock")
"""The machine's live lock: whoever runs an agent, a lab run or `provarmor up` on a shared
machine holds it (``flock``), and each privileged test holds it while it runs."""
LIVE_LOCK_HELD = "PROVARMOR_TEST_LIVE_LOCK_HELD"
"""Set when pytest itself runs under ``flock`` of the live lock (the lock is then its own)."""

for _size in ("COLUMNS", "LINES"):
    # Tests give the terminal size they mean (the CLI runner's env, a process's env). The
    # caller's own, or the COLUMNS=80 that GNU readline leaves in the environment pytest-xdist
    # starts its workers with, must not reach the consoles the CLI modules make on import.
    os.environ.pop(_size, None)


def pytest_configure(config: pytest.Config) -> None:
    """``flock LOCK pytest ...`` leaves the locked file open in pytest: its privileged tests
    then hold the lock already, and xdist's workers (which do not inherit the file) learn so
    from the environment."""
    if _holds_live_lock():
        os.environ[LIVE_LOCK_HELD] = "1"


def _holds_live_lock() -> bool:
    with contextlib.suppress(OSError):
        for fd in Path("/proc/self/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == str(LIVE_LOCK):
                    return True
    return False


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
    (see :func:`run_lock`). A privileged test also holds the machine's live lock, so a lab
    run or an agent started by someone else on a shared machine never runs beside it."""
    with contextlib.ExitStack() as held:
        if hasattr(item.config, "workerinput"):
            # each worker's basetemp is <the run's basetemp>/popen-<worker>
            folder = Path(item.config.option.basetemp).parent
            exclusive = item.get_closest_marker("exclusive") is not None
            held.enter_context(run_lock(folder, exclusive=exclusive))
        if item.get_closest_marker("privileged") and not os.environ.get(LIVE_LOCK_HELD):
            held.enter_context(live_lock())
        return (yield)


@contextlib.contextmanager
def live_lock() -> Iterator[None]:
    """The machine's live lock (:data:`LIVE_LOCK`), waited for (opened read-only: the file
    may belong to another user)."""
    fd = os.open(LIVE_LOCK, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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
