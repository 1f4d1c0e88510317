"""The real sensor (bpftrace on this kernel): a child whose creator exits before it first
runs (``nohup ... &`` as the last command of a ``sh -c``) is reported as the creator's
child, with the creator's program inherited, and its own children descend from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.ebpf.decoder import EbpfCounters
from provarmor.sources.ebpf.program import ProgramOptions
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.ebpf.wire import Header

HeadersOf = Callable[[list[bytes]], list[Header]]
"""The ``headers_of`` fixture (conftest.py)."""

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

INNER = "sleep 0.3; cat /etc/hostname"
COMMAND = f'nohup sh -c "{INNER}" >/dev/null 2>&1 &'
RUNS = 6
PINNED = ["taskset", "-c", "0", "chrt", "--fifo", "--reset-on-fork", "10"]
"""Half the runs: the outer sh real-time on one CPU, its child not (reset on fork), so the
outer sh exits before its child first runs and the kernel re-parents it to init."""


@dataclass
class Capture:
    events: list[Event]
    counters: EbpfCounters
    roots: list[int]
    adopted: set[int]
    """Children whose own fork record named a parent other than their creator."""


@pytest.fixture(scope="module")
def capture(headers_of: HeadersOf) -> Capture:
    if os.geteuid() != 0:
        pytest.skip("the sensor needs root")
    if shutil.which("taskset") is None or shutil.which("chrt") is None:
        pytest.skip("taskset and chrt (util-linux) are needed to force the re-parenting")
    if shutil.which("bpftrace") is None:
        pytest.skip("bpftrace is not installed (scripts/bootstrap.sh dev installs it)")
    lines: list[bytes] = []
    source = EbpfSource(EbpfSettings(program=ProgramOptions(flush_ms=200)), tap=lines.append)
    roots: list[int] = []
    with source:
        for run in range(RUNS):
            pin = PINNED if run % 2 == 0 else []
            process = subprocess.Popen([*pin, "sh", "-c", COMMAND])
            roots.append(process.pid)
            process.wait()
        _wait_for_inner_shells()
    events = list(source.events())
    return Capture(events, source.counters, roots, _adopted(headers_of, lines, set(roots)))


def _wait_for_inner_shells(timeout: float = 15.0) -> None:
    """The detached inner shells are nobody's children here: wait until none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = subprocess.run(["pgrep", "-f", INNER], capture_output=True, check=False)
        if alive.returncode != 0:
            return
        time.sleep(0.05)
    pytest.fail(f"the inner shells ({INNER}) did not finish within {timeout:.0f} s")


def _adopted(headers_of: HeadersOf, lines: list[bytes], roots: set[int]) -> set[int]:
    headers = headers_of(lines)
    creator = {h.values[0]: h.pid for h in headers if h.kind == "J" and h.pid in roots}
    return {
        h.pid
        for h in headers
        if h.kind == "F" and h.pid in creator and h.values[0] != creator[h.pid]
    }


def _execs(capture: Capture, args: tuple[str, ...]) -> list[Event]:
    return [e for e in capture.events if e.event.action == Action.EXEC and e.process.args == args]


def test_the_inner_shell_is_the_outer_shells_child(capture: Capture) -> None:
    outer = {e.process.pid: e for e in _execs(capture, ("sh", "-c", COMMAND))}
    assert set(outer) == set(capture.roots)
    inner = _execs(capture, ("sh", "-c", INNER))
    assert len(inner) == RUNS
    for shell in inner:
        pid = shell.process.pid
        (fork,) = [
            e for e in capture.events if e.event.action == Action.FORK and e.process.pid == pid
        ]
        assert fork.process.parent is not None
        creator = outer[fork.process.parent.pid]
        assert fork.process.parent.entity_id == creator.process.entity_id
        assert fork.process.args == ("sh", "-c", COMMAND)  # inherited from the outer sh
        assert shell.process.parent is not None
        assert shell.process.parent.entity_id == creator.process.entity_id
    assert len(capture.adopted) >= RUNS // 2  # the pinned runs at least
    assert capture.counters.fork_parent_fixed >= len(capture.adopted)
    assert capture.counters.parse_errors == 0, capture.counters.errors


def test_cat_descends_from_the_inner_shell(capture: Capture) -> None:
    inner = {e.process.pid: e for e in _execs(capture, ("sh", "-c", INNER))}
    cats = _execs(capture, ("cat", "/etc/hostname"))
    mine = [c for c in cats if c.process.parent and c.process.parent.pid in inner]
    assert len(mine) == RUNS
    for cat in mine:
        assert cat.process.parent is not None
        shell = inner[cat.process.parent.pid]
        assert cat.process.parent.entity_id == shell.process.entity_id
        (fork,) = [
            e
            for e in capture.events
            if e.event.action == Action.FORK and e.process.pid == cat.process.pid
        ]
        assert fork.process.parent is not None
        assert fork.process.parent.entity_id == shell.process.entity_id
