"""Who forked whom: matching each child's fork record with its creator's, for the eBPF decoder.

The child reports its own fork (``F``) with the parent the kernel names when the child first
runs. If the creator exited before that (``cmd &`` at the end of a ``sh -c``, ``nohup``, a
daemon's double fork), that is init or a subreaper, and the child would seem to inherit
init's program. The creator reports the same fork from its side (``J``: the child's pid), and
:class:`ForkMatcher` matches the two by child pid in either order: a ``J`` that arrives first
waits (bounded, :data:`MAX_PENDING`, drops counted) for its ``F``; an ``F`` naming pid 1 or a
parent already seen adopting children (an *adopter*) is *held* up to ``reparent_ns`` for its
``J``, and the child's execs and exit wait with it (:attr:`PendingFork.execs`). A fork whose
parent has an earlier event not out yet (its exec, or its own fork) waits *behind* it: the
child inherits what the parent is after that event. ``J`` pids are valid only when the
creator is in the initial pid namespace: the others are skipped, counted, and their children
keep the kernel's parent.

The matcher keeps this state and decides; the decoder builds the events. Every method that
lets forks go returns them as :data:`ReadyFork` (the fork, its creator's record when known)
for the decoder to emit, or pids to take one by one (emitting one fork can release others).
Every correction and drop is counted in the decoder's counters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provarmor.sources.ebpf import wire
from provarmor.sources.ebpf.tables import ProcessTable

if TYPE_CHECKING:
    from provarmor.sources.ebpf.decoder import EbpfCounters

MAX_PENDING = 4096
"""Records waiting for their other side (creator records, forks held or behind their parent;
in the decoder also strings, argv and working directories waiting for their header): the
oldest are dropped (or let go as recorded) beyond this."""
MAX_ADOPTERS = 256
"""Adoptive parents remembered (init's stand-ins: subreapers seen adopting a child)."""
INIT_PID = 1


@dataclass(slots=True)
class Argv:
    """An exec's arguments as ``execve`` was entered with (``cut``: beyond ``max_args``)."""

    args: tuple[str, ...]
    cut: bool
    ns: int
    """When ``execve`` was entered: the exec (or failure) record follows, maybe much later."""


@dataclass(slots=True)
class PendingFork:
    """A fork record not out yet: held for its creator, or behind its parent."""

    header: wire.Header
    since: int
    execs: list[tuple[wire.Header, Argv | None, str | None]] = field(default_factory=list)
    """For a held fork: the child's execs, complete, waiting to follow it."""
    exit: wire.Header | None = None
    """For a held fork: the child's exit, when it came first."""


@dataclass(frozen=True, slots=True)
class Creator:
    """The creator's side of a fork: its pid, ``start_boottime`` and record time."""

    pid: int
    start: int
    ns: int


ReadyFork = tuple[PendingFork, Creator | None]


class ForkMatcher:
    """The re-parenting state of one decoder run (see the module docstring)."""

    def __init__(
        self,
        table: ProcessTable,
        counters: EbpfCounters,
        start: Callable[[int], int],
        *,
        park_ns: int,
        reparent_ns: int,
    ) -> None:
        """``start`` turns a record's ``start_boottime`` into the table's start time; creator
        records are matched within ``park_ns`` of the fork."""
        self._table = table
        self._counters = counters
        self._start = start
        self._park_ns = park_ns
        self._reparent_ns = reparent_ns
        self._creators: dict[int, Creator] = {}
        """Child pid -> creator, for ``J`` records that arrived before the child's ``F``."""
        self._held: dict[int, PendingFork] = {}
        """Child pid -> its ``F`` record, held until its creator's ``J`` arrives."""
        self._behind: dict[int, ReadyFork] = {}
        """Child pid -> its fork, waiting for its parent's event that came before it."""
        self._adopters: dict[tuple[int, int], None] = {}
        """``(pid, start)`` of subreapers seen adopting a child."""

    # -- records --------------------------------------------------------------------------

    def on_fork(self, header: wire.Header) -> list[ReadyFork]:
        """The child's ``F``: out now with its creator (or as recorded), or held for it."""
        fork = PendingFork(header, header.ns)
        creator = self._creators.pop(header.pid, None)
        if creator is not None and abs(header.ns - creator.ns) <= self._park_ns:
            return [(fork, creator)]
        ppid, pstart = header.values[:2]
        if ppid == INIT_PID or (ppid, self._start(pstart)) in self._adopters:
            self._held.pop(header.pid, None)
            self._held[header.pid] = fork
            if len(self._held) > MAX_PENDING:
                self._counters.fork_parent_dropped += 1
                return [self.unconfirmed(next(iter(self._held)))]
            return []
        return [(fork, None)]

    def on_creator(self, header: wire.Header) -> list[ReadyFork]:
        """The creator's ``J``: releases the held fork it names, or waits for it; when that
        fork is out already with another parent, the child's later execs are corrected."""
        child, level = header.values
        if level != 0:
            self._counters.skipped["fork_creator_in_pid_namespace"] += 1
            return []
        creator = Creator(header.pid, header.start, header.ns)
        held = self._held.pop(child, None)
        if held is not None:
            return [(held, creator)]
        if child in self._behind:
            self._behind[child] = (self._behind[child][0], creator)
            return []
        known = self._table.latest(child)
        if known is not None and abs(known.forked_ns - header.ns) > self._park_ns:
            known = None  # not forked lately: the pid was reused, or its fork was never seen
        if known is not None:
            if known.ppid != creator.pid:  # its fork event is out already
                self._counters.fork_parent_late += 1
                adopter = self._table.find(known.ppid)
                if adopter is not None:
                    self._adopted_by(adopter.pid, adopter.start)
                parent = self._table.get(creator.pid, self._start(creator.start))
                known.ppid, known.creator = parent.pid, parent.ref()
            return []
        self._creators.pop(child, None)
        self._creators[child] = creator
        if len(self._creators) > MAX_PENDING:
            del self._creators[next(iter(self._creators))]
            self._counters.fork_parent_dropped += 1
        return []

    # -- deciding the parent --------------------------------------------------------------

    @staticmethod
    def parent_pid(fork: PendingFork, creator: Creator | None) -> int:
        """The parent the fork will name: its creator when known, else the kernel's."""
        return creator.pid if creator is not None else fork.header.values[0]

    def confirm(self, fork: PendingFork, creator: Creator | None) -> tuple[int, int]:
        """``(pid, start_boottime)`` of the fork's parent, now that it goes out; a parent
        corrected to the creator is counted, and the kernel's parent remembered as an
        adopter."""
        ppid, pstart = fork.header.values[:2]
        if creator is None or (creator.pid, creator.start) == (ppid, pstart):
            return ppid, pstart
        self._counters.fork_parent_fixed += 1
        self._adopted_by(ppid, self._start(pstart))
        return creator.pid, creator.start

    def _adopted_by(self, pid: int, start: int) -> None:
        """Remember a subreaper (``start``: the table's start time), so the next children
        that name it as their parent wait for their creator's record."""
        if pid == INIT_PID:
            return
        self._adopters.pop((pid, start), None)
        self._adopters[(pid, start)] = None
        if len(self._adopters) > MAX_ADOPTERS:
            del self._adopters[next(iter(self._adopters))]

    # -- waiting --------------------------------------------------------------------------

    def waiting(self, pid: int) -> PendingFork | None:
        """The fork of ``pid`` when it is not out yet (held for its creator, or behind its
        parent): the child's execs and exit follow it."""
        held = self._held.get(pid)
        if held is None and pid in self._behind:
            held = self._behind[pid][0]
        return held

    def wait_behind(self, fork: PendingFork, creator: Creator | None) -> list[ReadyFork]:
        """Hold ``fork`` until its parent's pending event is out. Bounded: when full, the
        oldest waiting fork is returned, to go out as it is, counted in
        ``fork_parent_dropped``."""
        self._behind[fork.header.pid] = (fork, creator)
        if len(self._behind) <= MAX_PENDING:
            return []
        self._counters.fork_parent_dropped += 1
        return [self._behind.pop(next(iter(self._behind)))]

    def behind(self, ppid: int, before: int | None = None) -> list[int]:
        """The children whose forks wait for ``ppid``'s event (those recorded ``before``
        its next exec, when given)."""
        return [
            pid
            for pid, (fork, creator) in self._behind.items()
            if self.parent_pid(fork, creator) == ppid
            and (before is None or fork.header.ns < before)
        ]

    def take_behind(self, pid: int) -> ReadyFork | None:
        return self._behind.pop(pid, None)

    def unconfirmed(self, pid: int) -> ReadyFork:
        """The held fork of ``pid``, let go without its creator's record (counted)."""
        self._counters.fork_parent_unconfirmed += 1
        return self._held.pop(pid), None

    # -- deadlines ------------------------------------------------------------------------

    def forget_stale(self, now: int) -> None:
        """Drop creator records whose fork did not come within ``park_ns``."""
        stale = [pid for pid, creator in self._creators.items() if now - creator.ns > self._park_ns]
        for pid in stale:
            del self._creators[pid]

    def held_due(self, now: int) -> list[int]:
        """Children whose held fork waited ``reparent_ns`` for its creator."""
        return [pid for pid, fork in self._held.items() if now - fork.since > self._reparent_ns]

    def behind_due(self, now: int) -> list[int]:
        """Children whose fork waited ``park_ns`` behind a parent's event that never came."""
        return [pid for pid, (fork, _) in self._behind.items() if now - fork.since > self._park_ns]

    def held_pids(self) -> list[int]:
        return list(self._held)

    def behind_pids(self) -> list[int]:
        return list(self._behind)
