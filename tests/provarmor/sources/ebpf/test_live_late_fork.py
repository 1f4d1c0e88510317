"""The real sensor with a forced race: a process's fork record is read after the records of
its own and of its child. bpftrace reads its per-CPU buffers one after the other; while it
is stopped (SIGSTOP), a launcher forks P on one CPU and P moves to the other CPU, opens a
file and forks C there. Done twice with the CPUs swapped, whichever buffer bpftrace drains
first after SIGCONT, one of the two P's fork record arrives after C's records and P's own.
Then P and C must still get their program, each on one graph node, never ``pid N``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.store import MemoryGraphStore
from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.ebpf.program import ProgramOptions
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.ebpf.wire import Header

HeadersOf = Callable[[list[bytes]], list[Header]]
"""The ``headers_of`` fixture (conftest.py)."""

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

LAUNCHER = """
import os, sys
first, second = int(sys.argv[1]), int(sys.argv[2])
os.sched_setaffinity(0, {first})
worker = os.fork()
if worker == 0:
    os.sched_setaffinity(0, {second})
    open("/etc/hostname").close()
    child = os.fork()
    if child == 0:
        open("/etc/os-release").close()
        os._exit(0)
    os.waitpid(child, 0)
    print(os.getpid(), child, flush=True)
    os._exit(0)
os.waitpid(worker, 0)
"""


@pytest.mark.usefixtures("two_cpu_race")
def test_a_fork_read_after_its_childs_records_still_names_the_program(
    headers_of: HeadersOf,
) -> None:
    lines: list[bytes] = []
    options = ProgramOptions(families=("process", "file"), socket_io=False)
    # reorder_ms=0: decoded in the order read, as records later than the reorder stage's
    # delay are (the stage would put P's fork first: tests/.../test_live_order.py)
    settings = EbpfSettings(program=options, perf_rb_pages=1024, reorder_ms=0)
    source = EbpfSource(settings, tap=lines.append)
    pairs: list[tuple[int, int]] = []
    with source:
        assert source.bpftrace_pid is not None
        os.kill(source.bpftrace_pid, signal.SIGSTOP)
        try:
            for first, second in ((0, 1), (1, 0)):
                done = subprocess.run(
                    [sys.executable, "-c", LAUNCHER, str(first), str(second)],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=30,
                )
                worker, child = map(int, done.stdout.split())
                pairs.append((worker, child))
        finally:
            os.kill(source.bpftrace_pid, signal.SIGCONT)
        # bpftrace 0.17 drops what it has not read yet when it is stopped: wait for it
        _wait_for_forks(headers_of, lines, {worker for worker, _child in pairs})
    events = list(source.events())
    assert source.counters.lost == 0, "the race needs every record"
    headers = headers_of(lines)

    def at(kind: str, pid: int) -> int:
        found = [i for i, h in enumerate(headers) if (h.kind, h.pid) == (kind, pid)]
        seen = [h.kind for h in headers if h.pid == pid]
        assert found, f"no {kind} record of {pid} among {seen} ({source.counters})"
        return found[0]

    raced = [(w, c) for w, c in pairs if at("F", w) > max(at("F", c), at("O", w))]
    assert raced, "bpftrace drained its CPU buffers interleaved: no fork arrived late"
    launcher = _launcher_program(events, pairs)
    builder = GraphBuilder()
    store = MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True))
    for worker, child in raced:
        for pid in (worker, child):  # C's records all went out before P's fork came
            nodes = [node for node in store.nodes.values() if node.pid == pid]
            assert [(node.label, node.executable) for node in nodes] == [(launcher, launcher)]
        later = [e for e in events if e.event.action == Action.FORK and e.process.pid == worker]
        assert [e.process.executable for e in later] == [launcher]
    assert source.counters.late_forks >= 1


def _wait_for_forks(
    headers_of: HeadersOf,
    lines: list[bytes],
    pids: set[int],
    timeout: float = 30.0,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        headers = headers_of(list(lines))
        if pids <= {header.pid for header in headers if header.kind == "F"}:
            return
        time.sleep(0.1)
    pytest.fail(f"bpftrace did not deliver the fork records of {sorted(pids)} in {timeout:.0f} s")


def _launcher_program(events: list[Event], pairs: list[tuple[int, int]]) -> str:
    """The program both launchers ran (their workers inherit it)."""
    forks = [e for e in events if e.event.action == Action.FORK and e.process.pid == pairs[0][0]]
    assert len(forks) == 1 and forks[0].process.parent is not None
    programs = {
        e.process.executable
        for e in events
        if e.event.action == Action.EXEC and e.process.pid == forks[0].process.parent.pid
    }
    assert len(programs) == 1, programs
    return programs.pop()
