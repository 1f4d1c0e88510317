"""Fixtures of the response tests: a context on this host (state in tmp_path), real process
trees, and a pair of network namespaces joined by a veth link (nothing on the host's own
network). Tests that use nftables or namespaces run under the shared lock:
``flock /tmp/provarmor-live.lock .venv/bin/pytest tests/provarmor/response``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provarmor.response.action import ResponseContext, build_context
from provarmor.response.records import ProcessTarget
from provarmor.response.settings import ResponseSettings
from provarmor.sources.procfs import read_process


def wait_for(condition: Callable[[], bool], *, timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def state_of(pid: int) -> str:
    """``/proc/PID/stat`` state letter; ``X`` when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return text[text.rfind(")") + 2]


def gone(pid: int) -> bool:
    return state_of(pid) in ("X", "Z")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            if int(text[text.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        pytest.skip("response actions need root (signals to any process, chown, nftables)")


@pytest.fixture
def context(tmp_path: Path, root: None) -> ResponseContext:
    return build_context(ResponseSettings(state_dir=tmp_path / "response"))


def target_of(pid: int, context: ResponseContext) -> ProcessTarget:
    info = read_process(pid, clock=context.clock)
    assert info is not None
    return ProcessTarget(
        entity_id=info.entity_id(context.host), pid=pid, executable=info.executable
    )


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real processes; whatever is left is killed and reaped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str, children: int = 0) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, start_new_session=True)
        started.append(process)
        wait_for(lambda: len(children_of(process.pid)) >= children, what="the children")
        return process

    yield start
    for process in started:
        for pid in children_of(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait(timeout=10)


TREE = ("sh", "-c", "sleep 300 & sleep 300 & wait")


@dataclass(frozen=True)
class NamespacePair:
    """``agent`` (10.231.0.1) and ``peer`` (10.231.0.2 and 10.231.0.3: the "manager")."""

    agent: str
    peer: str

    def run(
        self, namespace: str, *argv: str, timeout: float = 10
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", namespace, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def reaches(self, address: str) -> bool:
        return self.run(self.agent, "ping", "-c1", "-W1", address).returncode == 0


@pytest.fixture
def namespaces(root: None) -> Iterator[NamespacePair]:
    if shutil.which("nft") is None:
        pytest.skip("nftables is not installed (scripts/bootstrap.sh installs it)")
    pair = NamespacePair(agent=f"pa-response-a{os.getpid()}", peer=f"pa-response-p{os.getpid()}")
    try:
        for name in (pair.agent, pair.peer):
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            [
                "ip",
                "-n",
                pair.agent,
                "link",
                "add",
                "ra0",
                "type",
                "veth",
                "peer",
                "name",
                "rp0",
                "netns",
                pair.peer,
            ],
            check=True,
        )
        for name, link, addresses in (
            (pair.agent, "ra0", ("10.231.0.1/24",)),
            (pair.peer, "rp0", ("10.231.0.2/24", "10.231.0.3/24")),
        ):
            for address in addresses:
                subprocess.run(["ip", "-n", name, "addr", "add", address, "dev", link], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", link, "up"], check=True)
        wait_for(lambda: pair.reaches("10.231.0.2"), what="the veth link")
        yield pair
    finally:
        for name in (pair.agent, pair.peer):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def scope_group(root: None) -> Iterator[Path]:
    """A cgroup v2 group of the test's own (``/pa-scope-<pid>``); what a test moves into it
    must be gone before it is removed."""
    from provarmor.sources.owngroup import cgroup2_root

    hierarchy = cgroup2_root()
    if hierarchy is None:
        pytest.skip("no cgroup v2 hierarchy is mounted")
    group = hierarchy / f"pa-scope-{os.getpid()}"
    group.mkdir()
    try:
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        wait_for(lambda: not (group / "cgroup.procs").read_text().strip(), what="empty group")
        group.rmdir()


def move_into(group: Path, pid: int) -> None:
    (group / "cgroup.procs").write_text(f"{pid}\n")
