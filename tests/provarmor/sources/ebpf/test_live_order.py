"""The real sensor with a forced race between CPUs: a process execs on one CPU, moves to the
other and forks there at once. bpftrace reads its per-CPU buffers one after the other;
while it is stopped (SIGSTOP) the launcher runs P twice, the CPUs swapped, so whichever
buffer bpftrace drains first after SIGCONT, one child's fork record is read before ANY
record of its parent's exec (the argv and the exec record are in the other buffer). Decoded
in the order read, that child inherits P's program from before the exec (the launcher's);
the reorder stage decodes records in kernel-time order: both children inherit the exec'd
program. (Seen in CI: test_live_reparent's inner shell inherited pytest's python; in the
lab: a cron job's child with no cron parent.)"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.ebpf.decoder import EbpfDecoder
from provarmor.sources.ebpf.program import ProgramOptions
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.ebpf.wire import Header

HeadersOf = Callable[[list[bytes]], list[Header]]
"""The ``headers_of`` fixture (conftest.py)."""

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

LAUNCHER = """
import os, sys
first, second = sys.argv[1], sys.argv[2]
os.sched_setaffinity(0, {int(first)})
parent = os.fork()
if parent == 0:
    os.execv(sys.executable, [sys.executable, "-S", "-c", sys.argv[3], second])
os.waitpid(parent, 0)
print(parent, flush=True)
"""
REORDER_MS = 5000
PARENT = """
import os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
child = os.fork()
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
"""


@pytest.mark.usefixtures("two_cpu_race")
def test_a_child_read_before_its_parents_exec_inherits_the_execd_program(
    headers_of: HeadersOf,
) -> None:
    lines: list[bytes] = []
    options = ProgramOptions(families=("process",), socket_io=False)
    # what bpftrace reads late here is as old as the stop is long (two Python launchers:
    # a few hundred ms), not the few ms of a busy host: the stage waits long enough for it
    settings = EbpfSettings(program=options, perf_rb_pages=1024, reorder_ms=REORDER_MS)
    source = EbpfSource(settings, tap=lines.append)
    parents: list[int] = []
    with source:
        assert source.bpftrace_pid is not None
        os.kill(source.bpftrace_pid, signal.SIGSTOP)
        try:
            for first, second in (("0", "1"), ("1", "0")):
                done = subprocess.run(
                    [sys.executable, "-S", "-c", LAUNCHER, first, second, PARENT],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=30,
                )
                parents.append(int(done.stdout))
        finally:
            os.kill(source.bpftrace_pid, signal.SIGCONT)
        children = _wait_for_children(headers_of, lines, set(parents))
    events = list(source.events())
    assert source.counters.lost == 0, "the race needs every record"
    context = source.context
    assert context is not None
    headers = headers_of(lines)

    def first(kind: str, pid: int) -> int:
        return next(i for i, h in enumerate(headers) if (h.kind, h.pid) == (kind, pid))

    raced = [p for p in parents if first("F", children[p]) < first("V", p)]
    assert raced, "bpftrace drained its CPU buffers interleaved: no fork came before an exec"
    for pid in parents:
        (execd,) = _of(events, Action.EXEC, pid)
        assert execd.process.args[-1] in ("0", "1") and execd.process.args[-3] == "-c"
        (fork,) = _of(events, Action.FORK, children[pid])
        assert fork.process.args == execd.process.args, f"child of {pid}"
        assert fork.process.parent is not None
        assert fork.process.parent.entity_id == execd.process.entity_id
    assert source.counters.reordered > 0
    # the same records decoded in the order read: the raced child has the launcher's program
    in_read_order = EbpfDecoder(dataclasses.replace(context, reorder_ns=0))
    raw = [line.rstrip(b"\n") for line in lines]
    decoded = [e for n, line in enumerate(raw, 1) for e in in_read_order.feed(line, n)]
    decoded += in_read_order.finish()
    for pid in raced:
        (execd,) = _of(decoded, Action.EXEC, pid)
        (fork,) = _of(decoded, Action.FORK, children[pid])
        assert fork.process.args != execd.process.args


def _of(events: list[Event], action: Action, pid: int) -> list[Event]:
    return [e for e in events if e.event.action == action and e.process.pid == pid]


def _wait_for_children(
    headers_of: HeadersOf,
    lines: list[bytes],
    parents: set[int],
    timeout: float = 30.0,
) -> dict[int, int]:
    """Parent pid -> its child's pid, once bpftrace delivered both children's fork records
    (bpftrace 0.17 drops what it has not read yet when it is stopped: wait for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        headers = headers_of(list(lines))
        children = {h.values[0]: h.pid for h in headers if h.kind == "F" and h.values[0] in parents}
        if set(children) == parents:
            return children
        time.sleep(0.1)
    pytest.fail(
        f"bpftrace did not deliver the forks of {sorted(parents)}' children in {timeout:.0f} s"
    )
