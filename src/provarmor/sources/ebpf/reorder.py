"""Kernel-time order for the records of bpftrace's per-CPU buffers, before they are decoded.

The kernel writes each CPU's records to that CPU's own buffer, and bpftrace reads the buffers
one after another: a parent that execs on one CPU and whose child then runs on another can
have the child's records read first, and decoded without the program the child inherited.
Within one buffer the records are in time order (every record is stamped with
``CLOCK_MONOTONIC`` when its probe runs, and probe runs are not preempted), so the streams
can be merged the way Falco's and Tetragon's consumers do: every record waits until the
newest record time read is ``delay_ns`` past it, and goes out in record-time order. Records
of one probe run share their time and keep their order. When bpftrace's output has been
idle for as long (nothing older can still be on its way), the caller lets everything out.

A line that is not a record (a socket-count flush, a loss report) takes the newest record
time read so far: it goes out after every record read before it, and after the late records
that happened before it. The program's start and end markers first let everything out:
the first starts the ``/proc`` seeding, nothing follows the second.

Nothing is dropped. A record that arrives after records younger than it went out (it waited
in its buffer longer than ``delay_ns``) goes out at once, counted in
:attr:`~provarmor.sources.ebpf.decoder.EbpfCounters.reorder_late` (the decoder's own
waiting, for an exec's argv and a fork's parent, still covers it); beyond ``limit``
(:data:`MAX_WAITING`) waiting records the oldest goes out early, counted in
``reorder_forced``.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from provarmor.sources.ebpf import wire

if TYPE_CHECKING:
    from provarmor.sources.ebpf.decoder import EbpfCounters

MAX_WAITING = 1 << 17
"""Records waiting at once (at 50 ms, 2.6 million records a second)."""
BARRIERS = frozenset({"b", "e"})
"""Record kinds that let everything before them out first: the program's start and end."""

_COMPACT_AT = 4096
"""Lines let out before the lists are shortened (a slice delete per this many)."""

Ready = tuple[str, wire.Line]
"""A line let out: its location (for error messages) and what it parsed to."""


class ReorderBuffer:
    """Lets lines out in record-time order once ``delay_ns`` old (see the module docstring).
    ``delay_ns`` 0: in the order they arrive.

    The waiting lines are kept sorted in two parallel lists (record times, lines) from
    ``_head`` on: most records arrive in order and are appended; the others are inserted
    near the end; what is due is one slice, found by bisection."""

    def __init__(self, delay_ns: int, counters: EbpfCounters, *, limit: int = MAX_WAITING) -> None:
        self._delay = delay_ns
        self._counters = counters
        self._limit = limit
        self._times: list[int] = []
        self._lines: list[Ready] = []
        self._head = 0
        """Index of the first line still waiting (those before it went out)."""
        self._newest = 0
        """The newest record time read."""
        self._released = 0
        """The record time of the last line let out."""

    def __len__(self) -> int:
        return len(self._times) - self._head

    def push(self, line: wire.Line, location: str) -> list[Ready]:
        """Take one parsed line; return the lines now due, in order."""
        if not self._delay:
            return [(location, line)]
        if isinstance(line, wire.Header):
            ns = line.ns
            if ns >= self._newest and line.kind in BARRIERS:
                self._newest = ns
                ready = self.drain()
                self._released = ns
                return [*ready, (location, line)]
        elif isinstance(line, wire.StringPart):
            ns = line.ns
        else:
            ns = self._newest
        if ns >= self._newest:
            self._newest = ns
            self._times.append(ns)
            self._lines.append((location, line))
        elif ns >= self._released:
            self._counters.reordered += 1
            at = bisect.bisect_right(self._times, ns, self._head)
            self._times.insert(at, ns)
            self._lines.insert(at, (location, line))
        else:
            self._counters.reorder_late += 1
            return [(location, line)]
        if len(self._times) - self._head > self._limit:
            self._counters.reorder_forced += 1
            return self._due(self._times[self._head])
        return self._due(self._newest - self._delay)

    def drain(self) -> list[Ready]:
        """Every waiting line, in order (at the end of the output, or when it was idle)."""
        if len(self) == 0:
            return []
        return self._due(self._times[-1])

    def _due(self, until: int) -> list[Ready]:
        head, times = self._head, self._times
        if head == len(times) or times[head] > until:
            return []
        cut = bisect.bisect_right(times, until, head)
        ready = self._lines[head:cut]
        self._released = times[cut - 1]
        if cut == len(times):
            times.clear()
            self._lines.clear()
            cut = 0
        elif cut > _COMPACT_AT:
            del times[:cut]
            del self._lines[:cut]
            cut = 0
        self._head = cut
        return ready
