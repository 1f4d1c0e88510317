"""Turns bpftrace output lines (see :mod:`provarmor.sources.ebpf.wire`) into canonical events.

Pure apart from its own state: bytes in, :class:`Event` values out, no I/O and no clock
(time comes from the records, a heartbeat line drives the deadlines). Each action is filled
exactly as :mod:`provarmor.model.actions` says. Losses are never silent: a bpftrace
``lost_events`` line adds to :attr:`EbpfCounters.lost` AND becomes a ``gap`` event; a line
that does not parse is a :class:`ParseError` in :attr:`EbpfCounters.errors`; a record that
arrived without a part it needed (an argv, a path) is counted in ``incomplete``.

Ordering: bpftrace reads one buffer per CPU, so records from different CPUs can arrive out of
order. With ``reorder_ns`` (the live source's default: 50 ms) every record first waits that
long for older ones and is decoded in record-time order
(:mod:`provarmor.sources.ebpf.reorder`; after ``reorder_ns`` without output, the caller lets
them out with :meth:`EbpfDecoder.idle`). What follows covers the records that still arrive
later, and every record when ``reorder_ns`` is 0. Strings belong to the next header of the
same ``(tid, ns)``; an exec is held back until its argv (sent at ``sys_enter_execve``, maybe
from another CPU) and working directory have arrived, or until ``park_ns`` of record time
has passed. A fork waits, as long, for its parent's exec when the parent entered ``execve``
before it and that exec is not out yet (parked, or its record still in another CPU's
buffer): the child inherits the new program.

Forks: the child reports its own fork (``F``), its creator the same fork (``J``); which
process the child's fork event names as its parent, and how long it waits for that, is
:mod:`provarmor.sources.ebpf.forks`'s business (:class:`ForkMatcher`); this class emits the
events it lets go.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from provarmor.model.actions import Action
from provarmor.model.errors import ParseError
from provarmor.model.event import (
    Endpoint,
    Event,
    EventInfo,
    File,
    Host,
    Network,
    Process,
    ProcessRef,
    Target,
    User,
)
from provarmor.model.time_units import NS_PER_SECOND
from provarmor.sources.ebpf import wire
from provarmor.sources.ebpf.forks import (
    MAX_PENDING,
    Argv,
    Creator,
    ForkMatcher,
    PendingFork,
    ReadyFork,
)
from provarmor.sources.ebpf.reorder import Ready, ReorderBuffer
from provarmor.sources.ebpf.tables import Peer, ProcessTable, ProcState
from provarmor.sources.procfs import HostIdentity, ProcClock, ProcessInfo
from provarmor.sources.procnet import ServerRole
from provarmor.sources.running import ancestors_first, running_event

DATASET = "ebpf"
MAX_KEPT_ERRORS = 50
FMODE_CREATED = 0x100000
"""``file->f_mode`` bit set when this open created the file (include/linux/fs.h)."""
_O_ACCMODE, _O_CREAT, _O_TRUNC, _O_DIRECTORY = 0o3, 0o100, 0o1000, 0o200000
_AT_REMOVEDIR = 0x200
_ENOENT, _EINPROGRESS = -2, -115
TTY_BEFORE_EXEC_NS = 10_000_000
"""An ``I`` record belongs to the exec record of its thread that follows within this time
(its probe runs microseconds before the exec record's, in the same tracepoint call)."""
_UNSET_ID = (-1, 0xFFFFFFFF)
_TRANSPORTS = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp", 132: "sctp", 136: "udplite"}
_AF_UNIX, _AF_INET, _AF_INET6 = 1, 2, 10
_V = TypeVar("_V")


@dataclass(slots=True)
class EbpfCounters:
    """What the sensor read, produced and lost. Safe to read from another thread."""

    lines: int = 0
    events: int = 0
    lost: int = 0
    """Records lost: those the kernel dropped (bpftrace ``lost_events``), plus
    :attr:`unreported`."""
    unreported: int = 0
    """Records the program printed that never arrived and were not reported lost either
    (bpftrace 0.17 drops the records it reads while handling SIGINT); known at the end."""
    gaps: int = 0
    """``gap`` events emitted (one per ``lost_events`` line, one for :attr:`unreported`)."""
    parse_errors: int = 0
    incomplete: int = 0
    """Events emitted without a part that was lost, arrived too late or was cut (argv
    beyond ``max_args``, a path or peer never seen)."""
    untimed_flows: int = 0
    """Socket flows whose first-byte time did not come with their byte counts: stamped with
    the flush's time (later than their first byte), so a time-respecting trace may miss them."""
    fork_parent_fixed: int = 0
    """Fork events whose parent was corrected from the creator's own record (the child had
    been re-parented to init or a subreaper before it first ran)."""
    exec_parent_fixed: int = 0
    """Exec events whose parent was corrected to the creator the same way."""
    fork_parent_late: int = 0
    """Creator records that contradicted a fork event already emitted (the child's record
    named a parent not known as adoptive, and arrived first): later execs are corrected."""
    fork_parent_unconfirmed: int = 0
    """Held-back forks released at their deadline without the creator's record."""
    fork_parent_dropped: int = 0
    """Creator records or held forks dropped from their bounded maps before a match."""
    late_forks: int = 0
    """Processes whose events went out before their program was known (their fork, or
    their parent's, arrived after them); their later events carry it."""
    reordered: int = 0
    """Records read after a younger record (another CPU's buffer) and put back in record-time
    order (:mod:`provarmor.sources.ebpf.reorder`)."""
    reorder_late: int = 0
    """Records that arrived after younger records had been decoded (they waited in their
    buffer longer than ``reorder_ns``): decoded at once, out of order."""
    reorder_forced: int = 0
    """Records let out before they were ``reorder_ns`` old: too many were waiting."""
    by_action: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    """Records read on purpose without an event, by reason."""
    errors: list[str] = field(default_factory=list)

    def reject(self, error: ParseError) -> None:
        self.parse_errors += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(str(error))


@dataclass(frozen=True, slots=True, kw_only=True)
class DecoderContext:
    """Facts about this host and run that the records do not carry."""

    host: HostIdentity
    clock: ProcClock
    monotonic_offset_ns: int
    """Realtime minus ``CLOCK_MONOTONIC`` (records are stamped with the latter)."""
    id_prefix: str = "ebpf-"
    source: str = "bpftrace"
    """Names the stream in error locations (``source:line``)."""
    park_ns: int = 2 * NS_PER_SECOND
    reparent_ns: int = NS_PER_SECOND // 2
    """How long a fork naming an adoptive parent waits for its creator's record (checked
    at heartbeats); creator records are matched within ``park_ns`` of the fork."""
    reorder_ns: int = 0
    """How long every record waits for older records from other CPUs' buffers before it is
    decoded (:mod:`provarmor.sources.ebpf.reorder`); 0: decoded in the order read."""


class EbpfDecoder:
    """Stateful decoder of one bpftrace run. Feed it every line, in order, then :meth:`finish`."""

    def __init__(self, context: DecoderContext, *, seed: Iterable[ProcessInfo] = ()) -> None:
        self.context = context
        self.counters = EbpfCounters()
        self.started = False
        """True once the program's BEGIN line arrived: every probe is attached."""
        self.ended = False
        """True once the program's END line arrived: nothing more will come."""
        self.table = ProcessTable(context.host)
        for info in seed:
            self.table.seed(info)
        self._host = Host(id=context.host.id, name=context.host.name, boot_id=context.host.boot_id)
        self._sequence = itertools.count(1)
        self._strings: dict[tuple[int, int], list[str]] = {}
        self._argv: dict[int, Argv] = {}
        self._cwd: dict[int, str | None] = {}
        self._parked: dict[int, wire.Header] = {}
        """Pid -> its exec record, waiting for its argv and working directory."""
        self._exec_failed: dict[int, int] = {}
        self._forks = ForkMatcher(
            self.table,
            self.counters,
            self._start,
            park_ns=context.park_ns,
            reparent_ns=context.reparent_ns,
        )
        self._reorder = ReorderBuffer(context.reorder_ns, self.counters)
        self._finishing = False
        self._owns: dict[int, int] = {}
        """tid -> record time of its latest ``L``: an exec with the same time is marked (other
        CPUs' records, other processes' ``L`` too, may come between the two)."""
        self._ttys: dict[int, tuple[int, str]] = {}
        """Tid -> ``(ns, terminal)`` of its ``I`` record: its exec record follows."""
        self._io_first: dict[tuple[int, int, int, int, int], int] = {}
        self._io_last: dict[tuple[int, int, int, int, int], int] = {}
        """``(generation, pid, start, fd, direction)`` -> record time of the flow's first
        (last) byte, until that generation's byte counts arrive (bpftrace prints every
        map at exit, by name: both generations' times can come before their counts)."""
        self._last_ns = 0
        self._records = 0
        self._emitted: int | None = None
        self._tick = context.clock.ns_per_tick
        self._epoch_boot = context.clock.start_from_ticks(0)
        self._handlers: dict[str, Callable[[wire.Header, list[str]], list[Event]]] = {
            "b": self._on_begin,
            "e": self._on_end,
            "h": self._on_heartbeat,
            "V": self._on_argv,
            "Z": self._on_cwd,
            "E": self._on_exec,
            "X": self._on_exec_failed,
            "F": self._on_fork,
            "J": self._on_creator,
            "Q": self._on_exit,
            "L": self._on_own,
            "I": self._on_tty,
            "O": self._on_open,
            "U": self._on_unlink,
            "R": self._on_rename,
            "K": self._on_link,
            "M": self._on_chmod,
            "C": self._on_chown,
            "H": self._on_chdir,
            "N": self._on_connect,
            "A": self._on_accept,
            "B": self._on_bind,
            "G": self._on_listen,
            "S": self._on_peer,
            "T": self._on_setid,
            "P": self._on_ptrace,
            "Y": self._on_module,
            "D": self._on_memfd,
            "W": self._on_mmap,
        }

    # -- entry points ---------------------------------------------------------------------

    def seed(
        self,
        processes: Iterable[ProcessInfo],
        roles: Mapping[int, tuple[ServerRole, ...]] | None = None,
        *,
        unreported: Collection[int] = (),
    ) -> list[Event]:
        """Add processes read from ``/proc`` (records already seen take precedence); with
        ``roles`` (their sockets, :mod:`provarmor.sources.procnet`), the ``running`` event
        of each process added, ancestors first (:mod:`provarmor.sources.running`), stamped
        with the time of the latest record, but for the ``unreported`` pids (the agent and
        the other pids the program never traces)."""
        processes = list(processes)
        added = {info.pid for info in processes if self.table.seed(info) is not None}
        if roles is None:
            return []
        events: list[Event] = []
        timestamp = self._last_ns + self.context.monotonic_offset_ns
        for running in ancestors_first(processes, self.context.host, roles):
            if running.info.pid not in added or running.info.pid in unreported:
                continue
            state = self.table.get(running.info.pid, running.info.start)
            process = state.process()
            if running.parent is not None:
                process = _with_parent(process, running.parent)
            sequence = next(self._sequence)
            events.append(
                running_event(
                    running,
                    process=process,
                    host=self._host,
                    timestamp=timestamp,
                    event_id=f"{self.context.id_prefix}{sequence}",
                    sequence=sequence,
                    dataset=DATASET,
                )
            )
        self._count(events)
        return events

    def feed(self, line: bytes, number: int) -> list[Event]:
        """Decode line ``number`` (1-based) of bpftrace's output."""
        self.counters.lines += 1
        if wire.is_record(line):
            self._records += 1
        location = f"{self.context.source}:{number}"
        try:
            parsed = wire.parse_line(line, location=location)
        except ParseError as error:
            self.counters.reject(error)
            return []
        return self._decode(self._reorder.push(parsed, location))

    def idle(self) -> list[Event]:
        """bpftrace's output has been idle for ``reorder_ns``: no older record is on its way,
        so the records waiting for one are decoded now (the live source calls this)."""
        return self._decode(self._reorder.drain())

    def _decode(self, ready: list[Ready]) -> list[Event]:
        events: list[Event] = []
        for location, parsed in ready:
            try:
                events += self._dispatch(parsed)
            except ParseError as error:
                if error.location is None:
                    error = ParseError(error.message, location=location)
                self.counters.reject(error)
        self._count(events)
        return events

    def finish(self) -> list[Event]:
        """Emit what is still held back (records waiting for older ones, forks whose
        creator's record never came, execs whose argv never came). Call once, at the end."""
        waited = self._decode(self._reorder.drain())
        self._finishing = True
        events = self._release_forks(self._forks.held_pids())
        for pid in list(self._parked):
            parked = self._parked.pop(pid, None)
            if parked is not None:
                events += self._exec_after_fork(parked)
        for pid in self._forks.behind_pids():
            waiting = self._forks.take_behind(pid)
            if waiting is not None:
                events += self._fork_event(*waiting)
        self._parked.clear()
        if self._emitted is not None:
            unreported = self._emitted - self._records - self.counters.lost
            if unreported > 0:
                self.counters.unreported = unreported
                events.append(self._gap(unreported))
        self._count(events)
        return waited + events

    def _count(self, events: list[Event]) -> None:
        self.counters.events += len(events)
        for event in events:
            self.counters.by_action[event.event.action] += 1

    def _dispatch(self, parsed: wire.Line) -> list[Event]:
        if isinstance(parsed, wire.Header):
            self._last_ns = max(self._last_ns, parsed.ns)
            handler = self._handlers.get(parsed.kind)
            if handler is None:
                raise ParseError(f"no handler for record kind {parsed.kind!r}")
            return handler(parsed, self._strings.pop((parsed.tid, parsed.ns), []))
        if isinstance(parsed, wire.StringPart):
            self._pending_string(parsed)
            return []
        if isinstance(parsed, wire.Lost):
            return [self._gap(parsed.count)]
        if isinstance(parsed, wire.IoTimes):
            times = self._io_last if parsed.last else self._io_first
            times.update(((parsed.generation, *entry[:4]), entry[4]) for entry in parsed.times)
            return []
        if isinstance(parsed, wire.IoTotals):
            return self._io_events(parsed)
        if isinstance(parsed, wire.Emitted):
            self._emitted = parsed.count
        return []

    def _pending_string(self, part: wire.StringPart) -> None:
        key = (part.tid, part.ns)
        strings = self._strings.get(key)
        if strings is None:
            if len(self._strings) >= MAX_PENDING:
                del self._strings[next(iter(self._strings))]
                self.counters.incomplete += 1
            strings = self._strings[key] = []
        strings.append(part.text)

    # -- building blocks ------------------------------------------------------------------

    def _event(  # noqa: PLR0913  (one keyword per optional part of an event)
        self,
        action: Action,
        header: wire.Header,
        process: Process,
        *,
        outcome: str = "success",
        file: File | None = None,
        source: Endpoint | None = None,
        destination: Endpoint | None = None,
        network: Network | None = None,
        target: Target | None = None,
        state: ProcState | None = None,
        count: int = 1,
        end: int = 0,
    ) -> Event:
        """``end``: record time of the last record aggregated (0: none)."""
        sequence = next(self._sequence)
        offset = self.context.monotonic_offset_ns
        return Event(
            timestamp=header.ns + offset,
            event=EventInfo(
                action=action,
                id=f"{self.context.id_prefix}{sequence}",
                sequence=sequence,
                outcome=outcome,
                dataset=DATASET,
                count=count,
                end=end + offset if end else 0,
            ),
            host=self._host,
            process=process,
            file=file,
            source=source,
            destination=destination,
            network=network,
            target=target,
            container=state.container if state is not None else None,
        )

    def _start(self, boottime_ns: int) -> int:
        """``start_boottime`` -> ns since the epoch, rounded to ticks like ``/proc``."""
        return self._epoch_boot + boottime_ns // self._tick * self._tick

    def _state(self, header: wire.Header) -> ProcState:
        return self.table.get(header.pid, self._start(header.start))

    def _simple(
        self, action: Action, header: wire.Header, file: File, *, ok: bool | None = None
    ) -> list[Event]:
        """An event about one file by the record's process; failure when ``ret < 0``."""
        state = self._state(header)
        success = header.values[0] >= 0 if ok is None else ok
        outcome = "success" if success else "failure"
        return [
            self._event(action, header, state.process(), outcome=outcome, file=file, state=state)
        ]

    def _gap(self, count: int) -> Event:
        self.counters.lost += count
        self.counters.gaps += 1
        header = wire.Header("gap", self._last_ns, 0, 0, 0, (), "")
        return self._event(Action.GAP, header, Process(entity_id="", pid=0), count=count)

    # -- processes ------------------------------------------------------------------------

    def _on_begin(self, header: wire.Header, strings: list[str]) -> list[Event]:
        self.started = True
        return []

    def _on_end(self, header: wire.Header, strings: list[str]) -> list[Event]:
        self.ended = True
        return []

    def _on_heartbeat(self, header: wire.Header, strings: list[str]) -> list[Event]:
        self.table.purge(header.ns)
        self._forks.forget_stale(header.ns)
        events = self._release_forks(self._forks.held_due(header.ns))
        due = [
            pid
            for pid, parked in self._parked.items()
            if header.ns - parked.ns > self.context.park_ns
        ]
        for pid in due:
            events += self._exec_after_fork(self._parked.pop(pid))
        for pid in self._forks.behind_due(header.ns):
            entry = self._forks.take_behind(pid)
            if entry is not None:  # the parent's event never came: out as recorded
                events += self._fork_event(*entry, wait=False)
        return events

    def _on_argv(self, header: wire.Header, strings: list[str]) -> list[Event]:
        argc, cut = header.values
        if self._exec_failed.get(header.tid, -1) > header.ns:
            return []  # the argv of an execve whose failure arrived first (another CPU)
        if len(strings) != argc:
            self.counters.incomplete += 1
        _bounded_put(self._argv, header.tid, Argv(tuple(strings), bool(cut), header.ns))
        return self._release(header.tid)

    def _on_cwd(self, header: wire.Header, strings: list[str]) -> list[Event]:
        complete = bool(header.values[0])
        cwd = "/" + "/".join(reversed(strings)) if complete else None
        _bounded_put(self._cwd, header.tid, cwd)
        return self._release(header.tid)

    def _release(self, tid: int) -> list[Event]:
        parked = self._parked.get(tid)
        if parked is None:
            for pid, candidate in self._parked.items():
                if candidate.values[0] == tid:
                    parked, tid = candidate, pid
                    break
        if parked is None or not self._exec_ready(parked):
            return []
        del self._parked[tid]
        return self._exec_after_fork(parked)

    def _exec_ready(self, header: wire.Header) -> bool:
        return header.values[0] in self._argv and header.pid in self._cwd

    def _exec_after_fork(self, header: wire.Header) -> list[Event]:
        """The exec event now, or after the child's fork when that is held back (the argv
        and cwd go with it: a second exec's would replace them)."""
        held = self._forks.waiting(header.pid)
        if held is None:
            return [self._exec_event(header), *self._forks_behind(header.pid)]
        argv = self._argv.pop(header.values[0], None)
        held.execs.append((header, argv, self._cwd.pop(header.pid, None)))
        return []

    def _on_exec(self, header: wire.Header, strings: list[str]) -> list[Event]:
        own = self._owns.pop(header.tid, None) == header.ns  # its L, if any, came before
        ns, tty = self._ttys.pop(header.tid, (0, ""))
        if not 0 <= header.ns - ns <= TTY_BEFORE_EXEC_NS:
            tty = ""  # no I record just before: no controlling terminal at this exec
        state = self._state(header)
        if state.own != own or state.tty != tty:
            state.own = own  # the kernel's cgroup at the exec decides (a jail moves it out)
            state.tty = tty
            state.changed()
        if self._exec_ready(header):
            return self._exec_after_fork(header)
        if header.pid in self._parked:
            earlier = self._parked.pop(header.pid)
            self._parked[header.pid] = header
            return self._exec_after_fork(earlier)
        self._parked[header.pid] = header
        return []

    def _exec_event(
        self,
        header: wire.Header,
        parts: tuple[Argv | None, str | None] | None = None,
    ) -> Event:
        old_pid, ppid, pstart, uid, euid, _gid, egid = header.values
        if parts is None:
            parts = self._argv.pop(old_pid, None), self._cwd.pop(header.pid, None)
        argv, cwd = parts
        if argv is None or cwd is None or argv.cut:
            self.counters.incomplete += 1
        state = self._state(header)
        if cwd is not None:
            state.cwd = cwd
        state.executable = state.resolve(header.text)
        state.args = argv.args if argv is not None else ()
        state.uid, state.euid, state.egid = uid, euid, egid
        state.changed()
        if state.creator is not None and state.creator.pid != ppid:
            self.counters.exec_parent_fixed += 1  # re-parented since its fork
            parent = state.creator
        else:
            state.ppid = ppid
            parent = self.table.get(ppid, self._start(pstart)).ref()
        process = _with_parent(state.process(), parent)
        file = File(path=state.executable)
        return self._event(Action.EXEC, header, process, file=file, state=state)

    def _on_exec_failed(self, header: wire.Header, strings: list[str]) -> list[Event]:
        self._argv.pop(header.tid, None)
        _bounded_put(self._exec_failed, header.tid, header.ns)
        if header.values[0] == _ENOENT:
            self.counters.skipped["exec_enoent"] += 1
            return self._forks_behind(header.pid)
        state = self._state(header)
        failed = self._simple(Action.EXEC, header, File(path=state.resolve(header.text)))
        return failed + self._forks_behind(header.pid)

    def _on_fork(self, header: wire.Header, strings: list[str]) -> list[Event]:
        return self._emit_forks(self._forks.on_fork(header))

    def _on_creator(self, header: wire.Header, strings: list[str]) -> list[Event]:
        return self._emit_forks(self._forks.on_creator(header))

    def _emit_forks(self, ready: list[ReadyFork], *, wait: bool = True) -> list[Event]:
        events: list[Event] = []
        for fork, creator in ready:
            events += self._fork_event(fork, creator, wait=wait)
        return events

    def _release_forks(self, pids: list[int]) -> list[Event]:
        """Emit held forks as their child reported them (no creator record came)."""
        events: list[Event] = []
        for pid in pids:
            events += self._fork_event(*self._forks.unconfirmed(pid))
        return events

    def _fork_event(
        self, fork: PendingFork, creator: Creator | None, *, wait: bool = True
    ) -> list[Event]:
        """The fork of the child that sent ``fork``, by ``creator`` when known; then the
        child's execs that waited for it. With ``wait``, a fork whose parent has an earlier
        event not out yet waits behind it instead."""
        wait = wait and not self._finishing
        header = fork.header
        if wait and self._parent_pending(self._forks.parent_pid(fork, creator), header.ns):
            return self._emit_forks(self._forks.wait_behind(fork, creator), wait=False)
        ppid, pstart = self._forks.confirm(fork, creator)
        _ppid, _pstart, uid, euid, _gid, egid = header.values
        parent = self.table.get(ppid, self._start(pstart))
        start = self._start(header.start)
        child = self.table.fork(parent, header.pid, start, header.text, at=header.ns)
        self.counters.late_forks = self.table.late_forks
        child.uid, child.euid, child.egid = uid, euid, egid
        process = _with_parent(child.process(), parent.ref())
        events = [self._event(Action.FORK, header, process, state=child)]
        for index, (exec_header, argv, cwd) in enumerate(fork.execs):
            events.append(self._exec_event(exec_header, (argv, cwd)))
            later = fork.execs[index + 1 :]
            events += self._forks_behind(header.pid, later[0][0].ns if later else None)
        if not fork.execs:
            events += self._forks_behind(header.pid)
        events += self._release(header.pid)
        if fork.exit is not None:
            events += self._on_exit(fork.exit, [])
        return events

    def _parent_pending(self, ppid: int, ns: int) -> bool:
        """Whether an event of ``ppid`` that came before a fork at ``ns`` is not out yet: its
        exec, parked for its argv, or not arrived while its argv did (records of another
        CPU's buffer read later), or its own fork."""
        parked = self._parked.get(ppid)
        if parked is not None and parked.ns <= ns:
            return True
        argv = self._argv.get(ppid)
        if argv is not None and argv.ns <= ns:
            return True  # it was inside execve before this fork: the result is on its way
        return self._forks.waiting(ppid) is not None

    def _forks_behind(self, ppid: int, before: int | None = None) -> list[Event]:
        """The forks of ``ppid``'s children that waited for its event just emitted (those
        recorded ``before`` its next exec, when that one is out too)."""
        events: list[Event] = []
        for pid in self._forks.behind(ppid, before):
            entry = self._forks.take_behind(pid)
            if entry is not None:
                events += self._fork_event(*entry)
        return events

    def _on_own(self, header: wire.Header, strings: list[str]) -> list[Event]:
        """The process runs in ProvArmor's own cgroup: its events carry the mark from now."""
        _bounded_put(self._owns, header.tid, header.ns)
        state = self._state(header)
        if not state.own:
            state.own = True
            state.changed()
        return []

    def _on_tty(self, header: wire.Header, strings: list[str]) -> list[Event]:
        """The controlling terminal of the exec record that follows."""
        _bounded_put(self._ttys, header.tid, (header.ns, header.text))
        return []

    def _on_exit(self, header: wire.Header, strings: list[str]) -> list[Event]:
        held = self._forks.waiting(header.pid)
        if held is not None and held.exit is None:
            held.exit = header  # follows its fork
            return []
        state = self._state(header)
        self.table.retire(state, until=header.ns + 2 * self.context.park_ns)
        return [self._event(Action.EXIT, header, state.process(), state=state)]

    # -- files ----------------------------------------------------------------------------

    def _on_open(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, dirfd, flags, fmode = header.values
        state = self._state(header)
        path = state.resolve(header.text, _s32(dirfd))
        writes = flags & _O_ACCMODE != 0
        if ret >= 0 and fmode & FMODE_CREATED:
            action = Action.CREATE
        elif ret >= 0 and flags & _O_TRUNC and writes:
            action = Action.TRUNCATE
        elif writes or flags & _O_CREAT:
            action = Action.WRITE
        else:
            action = Action.OPEN
        if ret >= 0:
            state.remember_fd(ret, path)
        file = File(path=path, type="dir" if flags & _O_DIRECTORY else "")
        return self._simple(action, header, file)

    def _on_unlink(self, header: wire.Header, strings: list[str]) -> list[Event]:
        _ret, dirfd, flags = header.values
        path = self._state(header).resolve(header.text, _s32(dirfd))
        return self._simple(Action.DELETE, header, File(path=path, type=_dir_if(flags)))

    def _on_rename(self, header: wire.Header, strings: list[str]) -> list[Event]:
        _ret, old_dirfd, new_dirfd, _flags = header.values
        return self._two_paths(Action.RENAME, header, strings, _s32(old_dirfd), _s32(new_dirfd), "")

    def _on_link(self, header: wire.Header, strings: list[str]) -> list[Event]:
        _ret, old_dirfd, new_dirfd, symbolic = header.values
        kind = "symlink" if symbolic else ""
        return self._two_paths(Action.LINK, header, strings, _s32(old_dirfd), _s32(new_dirfd), kind)

    def _two_paths(  # noqa: PLR0913  (the old and new half of a two-path record)
        self,
        action: Action,
        header: wire.Header,
        strings: list[str],
        old_dirfd: int,
        new_dirfd: int,
        kind: str,
    ) -> list[Event]:
        state = self._state(header)
        if len(strings) != 1:
            self.counters.incomplete += 1
        old = strings[0] if strings else ""
        if kind != "symlink" and old:
            old = state.resolve(old, old_dirfd)
        file = File(path=state.resolve(header.text, new_dirfd), original_path=old, type=kind)
        return self._simple(action, header, file)

    def _on_chmod(self, header: wire.Header, strings: list[str]) -> list[Event]:
        _ret, dirfd, mode = header.values
        path = self._state(header).resolve(header.text, _s32(dirfd))
        return self._simple(Action.CHMOD, header, File(path=path, mode=mode & 0o7777))

    def _on_chown(self, header: wire.Header, strings: list[str]) -> list[Event]:
        _ret, dirfd, uid, gid = header.values
        path = self._state(header).resolve(header.text, _s32(dirfd))
        file = File(path=path, uid=_id_text(uid), gid=_id_text(gid))
        return self._simple(Action.CHOWN, header, file)

    def _on_chdir(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, dirfd = header.values
        if ret == 0:
            state = self._state(header)
            state.cwd = state.resolve(header.text, _s32(dirfd))
            state.changed()
        self.counters.skipped["chdir"] += 1
        return []

    # -- sockets --------------------------------------------------------------------------

    def _on_connect(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, fd, family, port, proto, lport = header.values
        state = self._state(header)
        peer = _peer(family, proto, strings[0] if strings else "", lport, header.text, port)
        state.peers[fd] = peer
        outcome = "success" if ret == 0 else "unknown" if ret == _EINPROGRESS else "failure"
        network = Network(transport=peer.transport, direction="egress")
        event = self._event(
            Action.CONNECT,
            header,
            state.process(),
            outcome=outcome,
            source=peer.local,
            destination=peer.remote,
            network=network,
            state=state,
        )
        return [event]

    def _on_accept(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, _listen_fd, family, proto, lport, rport = header.values
        state = self._state(header)
        peer = _peer(family, proto, strings[0] if strings else "", lport, header.text, rport)
        state.peers[ret] = peer
        network = Network(transport=peer.transport, direction="ingress")
        event = self._event(
            Action.ACCEPT,
            header,
            state.process(),
            source=peer.local,
            destination=peer.remote,
            network=network,
            state=state,
        )
        return [event]

    def _on_bind(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, _fd, family, port, proto = header.values
        return self._local_only(Action.BIND, header, family, proto, header.text, port, ret)

    def _on_listen(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, _fd, _backlog, family, proto, lport = header.values
        return self._local_only(Action.LISTEN, header, family, proto, header.text, lport, ret)

    def _local_only(  # noqa: PLR0913  (the fields of a bind/listen record)
        self,
        action: Action,
        header: wire.Header,
        family: int,
        proto: int,
        address: str,
        port: int,
        ret: int,
    ) -> list[Event]:
        state = self._state(header)
        local = _endpoint(family, address, port)
        network = Network(transport=_transport(family, proto))
        outcome = "success" if ret >= 0 else "failure"
        event = self._event(
            action,
            header,
            state.process(),
            outcome=outcome,
            source=local,
            network=network,
            state=state,
        )
        return [event]

    def _on_peer(self, header: wire.Header, strings: list[str]) -> list[Event]:
        fd, family, proto, lport, rport = header.values
        state = self._state(header)
        local_ip = strings[0] if strings else ""
        state.peers[fd] = _peer(family, proto, local_ip, lport, header.text, rport)
        return []

    def _io_events(self, flush: wire.IoTotals) -> list[Event]:
        """The flows of one generation's flush; their times are used up."""
        generation = flush.generation
        events = [self._io_event(generation, *entry) for entry in flush.totals]
        for times in (self._io_first, self._io_last):
            for key in [key for key in times if key[0] == generation]:
                del times[key]
        return events

    def _io_event(  # noqa: PLR0913  (one aggregation map entry)
        self, generation: int, pid: int, start: int, fd: int, direction: int, calls: int, total: int
    ) -> Event:
        """One flow of a flush, stamped with its first byte and ending at its last (a
        capture without the time maps: both at the flush)."""
        state = self.table.get(pid, self._start(start))
        peer = state.peers.get(fd)
        if peer is None:
            self.counters.incomplete += 1
            peer = Peer("", None, None)
        send = direction == 0
        network = Network(
            transport=peer.transport, direction="egress" if send else "ingress", bytes=total
        )
        key = (generation, pid, start, fd, direction)
        first = self._io_first.get(key)
        if first is None:
            self.counters.untimed_flows += 1
            first = self._last_ns
        last = max(self._io_last.get(key, first), first)
        header = wire.Header("io", first, pid, pid, start, (), "")
        return self._event(
            Action.SEND if send else Action.RECV,
            header,
            state.process(),
            source=peer.local,
            destination=peer.remote,
            network=network,
            state=state,
            count=calls,
            end=last,
        )

    # -- identity, debugging, modules, memory ---------------------------------------------

    def _on_setid(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, group, first, second, third, new_real, new_effective = header.values
        state = self._state(header)
        if ret == 0:
            identity = new_effective
            if not group:
                state.uid, state.euid = new_real, new_effective
                state.changed()
        else:
            requested = [value for value in (second, first, third) if value not in _UNSET_ID]
            identity = requested[0] if requested else -1
        action = Action.SETGID if group else Action.SETUID
        target = Target(user=User(id=str(identity)))
        outcome = "success" if ret == 0 else "failure"
        event = self._event(
            action, header, state.process(), outcome=outcome, target=target, state=state
        )
        return [event]

    def _on_ptrace(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, request, target_pid = header.values
        state = self._state(header)
        if request == 0:
            target_pid = state.ppid
        known = self.table.find(target_pid)
        if known is not None:
            ref = known.ref()
        else:
            ref = ProcessRef(entity_id="", pid=target_pid)
            self.counters.incomplete += 1
        outcome = "success" if ret >= 0 else "failure"
        event = self._event(
            Action.PTRACE,
            header,
            state.process(),
            outcome=outcome,
            target=Target(process=ref),
            state=state,
        )
        return [event]

    def _on_module(self, header: wire.Header, strings: list[str]) -> list[Event]:
        _ret, fd, length = header.values
        state = self._state(header)
        path = state.resolve("", fd) if fd >= 0 else f"init_module:{length}"
        return self._simple(Action.MODULE_LOAD, header, File(path=path, type="module"))

    def _on_memfd(self, header: wire.Header, strings: list[str]) -> list[Event]:
        ret, _flags = header.values
        path = f"memfd:{header.text}"
        if ret >= 0:
            self._state(header).remember_fd(ret, path)
        return self._simple(Action.MEMFD_CREATE, header, File(path=path, type="memfd"))

    def _on_mmap(self, header: wire.Header, strings: list[str]) -> list[Event]:
        """The path the descriptor was opened by (a library is often opened through a
        symlink, so it can differ from the kernel's basename); the basename when the open
        was not seen."""
        ret, fd, _prot, inode = header.values
        state = self._state(header)
        path = state.fds.get(fd, "")
        if not path:
            path = header.text
            self.counters.incomplete += 1
        return self._simple(Action.MMAP_EXEC, header, File(path=path, inode=inode), ok=ret == 0)


def _with_parent(process: Process, parent: ProcessRef) -> Process:
    return msgspec.structs.replace(process, parent=parent)


def _bounded_put(mapping: dict[int, _V], key: int, value: _V) -> None:
    mapping.pop(key, None)
    mapping[key] = value
    if len(mapping) > MAX_PENDING:
        del mapping[next(iter(mapping))]


def _s32(value: int) -> int:
    """A C ``int`` that bpftrace printed zero-extended (``AT_FDCWD`` as 4294967196)."""
    return value - (1 << 32) if (1 << 31) <= value < (1 << 32) else value


def _dir_if(flags: int) -> str:
    return "dir" if flags & _AT_REMOVEDIR else ""


def _id_text(value: int) -> str:
    return "" if value in _UNSET_ID else str(value)


def _transport(family: int, proto: int) -> str:
    if family == _AF_UNIX:
        return "unix"
    return _TRANSPORTS.get(proto, str(proto) if proto else "")


def _endpoint(family: int, address: str, port: int) -> Endpoint | None:
    if family in (_AF_INET, _AF_INET6):
        return Endpoint(ip=address, port=port & 0xFFFF)
    if family == _AF_UNIX:
        return Endpoint(address="@" + address if port == 1 else address)
    return None


def _peer(  # noqa: PLR0913  (both ends of a socket)
    family: int, proto: int, local_ip: str, local_port: int, remote: str, remote_port: int
) -> Peer:
    """Both ends; for unix sockets ``remote_port`` 1 marks an abstract address."""
    if family in (_AF_INET, _AF_INET6):
        local = Endpoint(ip=local_ip, port=local_port & 0xFFFF) if local_ip else None
        remote_end = Endpoint(ip=remote, port=remote_port & 0xFFFF)
        return Peer(_transport(family, proto), local, remote_end)
    return Peer(_transport(family, proto), None, _endpoint(family, remote, remote_port))
