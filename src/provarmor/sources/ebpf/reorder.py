"""Kernel-time order for the records of bpftrace's per-CPU buffers, before they are decoded.

The kernel writes each CPU's records to that CPU's own buffer, and bpftrace reads the buffers
one after another: a parent that execs on one CPU and whose child then runs on another can
have the child's records read first, and decoded without the program the child inherited.
Within one buffer the records are in time order (every record is stamped with
``CLOCK_MONOTONIC`` when its probe runs, and probe runs are not preempted), so the streams
can be merged the way Falco's and Tetragon's consumers do: every record waits in a heap
until the newest record time read (or the clock, when the output is idle) is ``delay_ns``
past it, and goes out in record-time order. Records of one probe run share their time and
keep their order.

A line that is not a record (a socket-count flush, a loss report) takes the newest record
time read so far: it goes out after every record read before it, and after the late records
that happened before it. The program's start and end markers first let everything out:
the first starts the ``/proc`` seeding, nothing follows the second.

Nothing is dropped. A record that arrives after records younger than it went out (it waited
in its buffer longer than ``delay_ns``) goes out at once, counted in
:attr:`~provarmor.sources.ebpf.decoder.EbpfCounters.reorder_late` (the decoder's own
waiting, for an exec's argv and a fork's parent, still covers it); beyond
``limit`` (:data:`MAX_WAITING`) waiting records the oldest goes out early, counted in ``reorder_forced``.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING

from provarmor.sources.ebpf import wire

if TYPE_CHECKING:
    from provarmor.sources.ebpf.decoder import EbpfCounters

MAX_WAITING = 1 << 17
"""Records waiting at once (at 50 ms, 2.6 million records a second)."""
BARRIERS = frozenset({"b", "e"})
"""Record kinds that let everything before them out first: the program's start and end."""

Ready = tuple[str, wire.Line]
"""A line let out: its location (for error messages) and what it parsed to."""


class ReorderBuffer:
    """Lets lines out in record-time order once ``delay_ns`` old (see the module docstring).
    ``delay_ns`` 0: in the order they arrive."""

    def __init__(self, delay_ns: int, counters: EbpfCounters, *, limit: int = MAX_WAITING) -> None:
        self._delay = delay_ns
        self._counters = counters
        self._limit = limit
        self._heap: list[tuple[int, int, str, wire.Line]] = []
        self._sequence = itertools.count()
        self._newest = 0
        """The newest record time read."""
        self._released = 0
        """The record time of the last line let out."""

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, line: wire.Line, location: str) -> list[Ready]:
        """Take one parsed line; return the lines now due, in order."""
        if not self._delay:
            return [(location, line)]
        if isinstance(line, wire.Header | wire.StringPart):
            ns = line.ns
            if ns < self._released:
                self._counters.reorder_late += 1
                return [(location, line)]
            if ns < self._newest:
                self._counters.reordered += 1
            else:
                self._newest = ns
            if isinstance(line, wire.Header) and line.kind in BARRIERS:
                ready = self.drain()
                self._released = max(self._released, ns)
                return [*ready, (location, line)]
        else:
            ns = self._newest
        heapq.heappush(self._heap, (ns, next(self._sequence), location, line))
        ready = self._due(self._newest - self._delay)
        if len(self._heap) > self._limit:
            self._counters.reorder_forced += 1
            ready.append(self._pop())
        return ready

    def advance(self, now: int) -> list[Ready]:
        """The lines due at ``now`` (``CLOCK_MONOTONIC``, ns), when nothing arrived lately."""
        return self._due(now - self._delay)

    def drain(self) -> list[Ready]:
        """Every waiting line, in order (at the end of the output)."""
        return self._due(None)

    def _due(self, until: int | None) -> list[Ready]:
        heap = self._heap
        ready: list[Ready] = []
        while heap and (until is None or heap[0][0] <= until):
            ready.append(self._pop())
        return ready

    def _pop(self) -> Ready:
        ns, _, location, line = heapq.heappop(self._heap)
        self._released = max(self._released, ns)
        return location, line
