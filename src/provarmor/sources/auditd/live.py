"""The live Linux audit source: reads the kernel's audit records over netlink and yields
canonical events, owning the kernel's audit settings while it runs.

``AuditLiveSource(host).start()`` checks the prerequisites (CAP_AUDIT_CONTROL, kernel audit,
nobody else receiving the records: :class:`AuditBusy` names the process that does), becomes
the kernel's audit pid, sets ``enabled`` and ``backlog_limit`` (and, when asked, the backlog
wait time and rate limit), and installs its rules:

* one ``never`` rule per excluded pid, first in the exit filter list (``-A exit,never -S all
  -F pid=N -k provarmor_self``): the agent's own syscalls are never audited, by ProvArmor's
  rules or anybody else's, so its own reads and writes cannot feed back into a loop;
* ProvArmor's watch rules (:data:`~provarmor.sources.auditd.rules.AUDIT_RULES`) for each
  syscall ABI of the host (64- and 32-bit on x86_64).

Three threads share the work. The reader receives records, parses them and runs them
through :class:`~provarmor.sources.auditd.stream.AuditEventStream`; the consumer (a pipeline
thread) takes events in batches with :meth:`AuditLiveSource.poll` (or iterates
:meth:`AuditLiveSource.events`); a status thread polls the kernel's counters. The reader never
sends a netlink request: the kernel makes whoever sends one while its backlog is full sleep
up to ``backlog_wait_time`` (60 s by default), and the reader is the one that empties it.

When the consumer falls ``queue_events`` behind, the reader waits: the socket buffer fills,
then the kernel's backlog; the kernel makes audited processes wait, then drops and counts.
No loss is silent: each increase of the kernel's ``lost`` counter becomes a host-wide ``gap``
event (``event.count``: records lost), and each receive failing with ``ENOBUFS`` (the kernel
gave up waiting for room and queued records for a retry; those it finally drops are counted
in ``lost``) a ``gap`` of count 0 (unknown).

:meth:`AuditLiveSource.stop` removes exactly the rules it added, reads what the kernel still
had queued, and restores the audit pid, ``enabled`` and every limit it changed. It is
idempotent, safe in a signal handler (what it locks is re-entrant or never held by the
thread it interrupts) and runs at exit if never called. If the reader dies, it gives the
records back to the kernel at once: audited processes never wait on a reader that is gone.

One module because start-up, the threads and teardown share one piece of state (what was
changed in the kernel), whose invariants are easier to check side by side.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import errno
import logging
import os
import platform
import select
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from provarmor.model.actions import Action
from provarmor.model.errors import ParseError
from provarmor.model.event import Event, EventInfo, Host, Process, ProcessRef
from provarmor.sources.auditd import netlink
from provarmor.sources.auditd.coalescer import DEFAULT_WINDOW
from provarmor.sources.auditd.netlink import AuditBusy as AuditBusy
from provarmor.sources.auditd.netlink import (
    AuditRuleData,
    AuditSocket,
    AuditStatus,
    RuleField,
    check_owner,
    check_privileges,
    open_audit_socket,
    read_status,
    remove_stale_rules,
)
from provarmor.sources.auditd.netlink import AuditUnavailable as AuditUnavailable
from provarmor.sources.auditd.records import (
    RECORD_TYPES,
    WANTED_TYPES,
    AuditRecord,
    RecordParser,
    record_type_name,
    split_audit_line,
)
from provarmor.sources.auditd.rules import AUDIT_RULES
from provarmor.sources.auditd.stream import AuditEventStream
from provarmor.sources.base import HostContext, IngestReport

log = logging.getLogger(__name__)

SOURCE = "netlink"
DATASET = "auditd"
SELF_KEY = "provarmor_self"
"""Key of the ``never`` rules that exclude the agent's own pids."""
DEFAULT_BACKLOG_LIMIT = 8192
_BATCH = 512
_DRAIN_IDLE_S = 0.1
_IDLE_WAIT_S = 1.0
_JOIN_EXTRA_S = 1.0
_RECEIVE_BYTES = 65536
_TYPE = struct.Struct("=H")
"""``nlmsg_type``, at offset 4 of the netlink header."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSeed:
    """A process running before the source started (the agent reads them from /proc)."""

    pid: int
    entity_id: str = ""
    start: int = 0
    executable: str = ""
    args: tuple[str, ...] | None = None
    parent: ProcessRef | None = None
    own: bool = False
    """In ProvArmor's own cgroup (``/proc/PID/cgroup``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditLiveSettings:
    """Tuning of the live source. None leaves a kernel setting as it is."""

    backlog_limit: int = DEFAULT_BACKLOG_LIMIT
    """Records the kernel may queue for us before processes wait (then records drop)."""
    backlog_wait_time: int | None = None
    """Jiffies a process waits for room in a full backlog before its record is lost."""
    rate_limit: int | None = None
    """Records per second the kernel sends at most (0: no limit)."""
    arches: tuple[str, ...] = ("b64", "b32")
    """Syscall ABIs to watch (``b32`` is skipped on hosts without one)."""
    io: bool = False
    """Also watch socket send/receive (high volume)."""
    receive_buffer: int = 8 * 1024 * 1024
    queue_events: int = 65536
    """Events held for the consumer before the reader waits."""
    status_interval_s: float = 1.0
    idle_flush_s: float = 0.05
    """Close events still open once the socket has been quiet this long."""
    read_linger_s: float = 0.02
    """After waking for new records, wait this long so they are read as a batch: at low
    rates the cost per wake-up (not per record) would otherwise dominate."""
    drain_timeout_s: float = 2.0
    """How long :meth:`AuditLiveSource.stop` reads what the kernel still had queued."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditLiveCounters:
    """A snapshot of what the source read, produced and lost."""

    records: int = 0
    """Audit records received (every type)."""
    events: int = 0
    """Canonical events produced (``gap`` events not included)."""
    parse_errors: int = 0
    kernel_lost: int = 0
    """Records the kernel dropped while we ran (increase of its ``lost`` counter)."""
    backlog: int = 0
    """Records queued in the kernel at the last status poll."""
    overruns: int = 0
    """Receives that failed with ENOBUFS (the socket dropped an unknown number)."""
    gaps: int = 0
    """``gap`` events emitted."""


def exclusion_rule(pid: int) -> AuditRuleData:
    """``-A exit,never -S all -F pid=PID -k provarmor_self``: never audit process ``pid``."""
    return AuditRuleData(
        filter=netlink.AUDIT_FILTER_EXIT | netlink.AUDIT_FILTER_PREPEND,
        action=netlink.AUDIT_NEVER,
        mask=netlink.ALL_SYSCALLS,
        fields=(
            RuleField(netlink.AUDIT_PID, netlink.AUDIT_EQUAL, pid),
            RuleField(netlink.AUDIT_FILTERKEY, netlink.AUDIT_EQUAL, text=SELF_KEY),
        ),
    )


@dataclass(slots=True)
class _ReaderState:
    """When data last came, and whether events may still be open since."""

    last_data: float
    dirty: bool = False


class AuditLiveSource:
    """Live canonical events from this host's kernel audit (see the module docstring).

    Args:
        host: the host id (and boot id) events carry; it also keys process identities.
        seeds: processes already running, entered in the process table before reading.
        running: their ``running`` events (:mod:`provarmor.sources.running`), handed out
            first, before any event read from the kernel.
        exclude_pids: pids never audited besides this process's own (the agent's helpers).
        backlog_limit: the kernel's backlog limit while the source runs.
        settings: the other tuning knobs (``backlog_limit``, when given, overrides theirs).
        tap: sees every record first, as an ``audit.log`` line in the RAW format (no newline),
            from the reader thread (to record what the kernel sent).
    """

    def __init__(  # noqa: PLR0913  (five from the agent, two optional)
        self,
        host: HostContext,
        *,
        seeds: Iterable[ProcessSeed] = (),
        running: Sequence[Event] = (),
        exclude_pids: Iterable[int] = (),
        backlog_limit: int | None = None,
        settings: AuditLiveSettings | None = None,
        tap: Callable[[bytes], None] | None = None,
    ) -> None:
        self.settings = settings or AuditLiveSettings()
        if backlog_limit is not None:
            self.settings = dataclasses.replace(self.settings, backlog_limit=backlog_limit)
        self.host = host
        self.report = IngestReport(source=SOURCE)
        self.exclude_pids = tuple(dict.fromkeys((os.getpid(), *exclude_pids)))
        # the records of one event come apart when the process emitting them waits for
        # room in a full backlog, by up to a backlog of other records: keep groups open
        window = max(DEFAULT_WINDOW, self.settings.backlog_limit)
        self._stream = AuditEventStream(host=host, report=self.report, source=SOURCE, window=window)
        self._running = list(running)
        for seed in seeds:
            self._stream.table.seed(
                seed.pid,
                entity_id=seed.entity_id,
                start=seed.start,
                executable=seed.executable,
                args=seed.args,
                parent=seed.parent,
                own=seed.own,
            )
        self._parser = RecordParser()
        self._tap = tap
        self._event_host = Host(id=host.id, name=host.name, boot_id=host.boot_id)
        self._gap_prefix = f"{host.id}:gap:{SOURCE}:{time.time_ns():x}"
        # what was changed in the kernel (the teardown undoes it, from whichever thread)
        self._previous: AuditStatus | None = None
        self._changed_mask = 0
        self._added: list[AuditRuleData] = []
        self._release_lock = threading.Lock()
        self._released = False
        # sockets and threads
        self._records_socket: AuditSocket | None = None
        self._status_socket: AuditSocket | None = None
        self._reader: threading.Thread | None = None
        self._status_thread: threading.Thread | None = None
        self._wake_read, self._wake_write = -1, -1
        self._stop_requested = False
        self._stopping = threading.Event()
        self._drain_deadline = 0.0
        self.failure: BaseException | None = None
        """The exception that ended the reader thread, if one did."""
        # hand-over to the consumer, and gap events from the status thread to the reader
        self._cond = threading.Condition()
        self._batches: deque[list[Event]] = deque()
        self._queued = 0
        self._finished = False
        self._inbox: deque[Event] = deque()
        self._status_lock = threading.Lock()
        # counters
        self._records = 0
        self._lost_seen = 0
        self._kernel_lost = 0
        self._backlog = 0
        self._overruns = 0
        self._gaps = 0

    # -- public API -----------------------------------------------------------------------

    @property
    def counters(self) -> AuditLiveCounters:
        return AuditLiveCounters(
            records=self._records,
            events=self.report.events,
            parse_errors=self.report.rejected,
            kernel_lost=self._kernel_lost,
            backlog=self._backlog,
            overruns=self._overruns,
            gaps=self._gaps,
        )

    @property
    def installed_rules(self) -> tuple[AuditRuleData, ...]:
        """The rules this source added and has not removed yet, in the order added."""
        return tuple(self._added)

    @property
    def finished(self) -> bool:
        """True once the reader has ended and every event has been taken."""
        return self._finished and not self._batches

    def start(self) -> None:
        """Claim the kernel's audit records and install the rules; return once reading.

        Raises:
            AuditBusy: another process receives the audit records (named with its pid).
            AuditUnavailable: no privilege, no kernel audit, or audit is locked.
        """
        if self._reader is not None or self._stop_requested:
            raise RuntimeError("AuditLiveSource.start() may be called once")
        check_privileges()
        try:
            with open_audit_socket() as control:
                status = read_status(control)
                check_owner(status)
                if status.enabled == 2:
                    raise AuditUnavailable(
                        "kernel audit is locked (enabled=2, set by `auditctl -e 2`): rules "
                        "cannot change until reboot; run the agent with `--sensor ebpf`"
                    )
                self._previous = status
                self._lost_seen = status.lost
                remove_stale_rules(control, self._watch_rules(), self_key=SELF_KEY)
                self._claim()
                self._configure(control)
                self._install(control)
            self._status_socket = open_audit_socket()
            self._deliver(self._running)
            self.report.events += len(self._running)
            self._running = []
            self._start_threads()
        except BaseException:
            self._stop_requested = True
            self._release_kernel()
            self._close_sockets()
            raise
        atexit.register(self.stop)

    def poll(self, timeout: float | None = None, *, max_events: int = 4096) -> list[Event]:
        """The events ready now, up to ``max_events``, in order; waits up to ``timeout``
        seconds (None: until some arrive or the source ends) when there are none."""
        with self._cond:
            if not self._batches and not self._finished:
                self._cond.wait(timeout)
            taken: list[Event] = []
            while self._batches and len(taken) < max_events:
                batch = self._batches.popleft()
                room = max_events - len(taken)
                if len(batch) > room:
                    self._batches.appendleft(batch[room:])
                    batch = batch[:room]
                taken += batch
            self._queued -= len(taken)
            self._cond.notify_all()
            return taken

    def events(self) -> Iterator[Event]:
        """Every event, until the source has stopped and all were taken."""
        if self._reader is None:
            return
        while True:
            batch = self.poll(0.5)
            yield from batch
            if not batch and self.finished:
                return

    def stop(self) -> None:
        """Remove the rules, read what is still queued, restore the kernel settings.

        Safe to call twice, before or after a failed start, and from a signal handler.
        """
        if self._stop_requested:
            return
        self._stop_requested = True
        atexit.unregister(self.stop)
        reader = self._reader
        if reader is not None:
            self._remove_rules(keep=self.exclude_pids)
            self._drain_deadline = time.monotonic() + self.settings.drain_timeout_s
            self._stopping.set()
            self._wake()
            reader.join(self.settings.drain_timeout_s + _JOIN_EXTRA_S)
            if self._status_thread is not None:
                self._status_thread.join(netlink.DEFAULT_TIMEOUT_S + _JOIN_EXTRA_S)
            if reader.is_alive():
                log.warning("audit reader did not finish within the drain timeout")
            else:
                self._final_status()
        self._release_kernel()
        if reader is None or not reader.is_alive():
            self._close_sockets()

    def __enter__(self) -> AuditLiveSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- start-up -------------------------------------------------------------------------

    def _watch_rules(self) -> list[AuditRuleData]:
        settings = self.settings
        return netlink.kernel_rules(
            AUDIT_RULES, arches=settings.arches, io=settings.io, host_arch=platform.machine()
        )

    def _claim(self) -> None:
        """Become the audit pid, on the socket the reader will read."""
        records = AuditSocket(receive_buffer=self.settings.receive_buffer)
        self._records_socket = records
        try:
            records.set_status(AuditStatus(mask=netlink.AUDIT_STATUS_PID, pid=os.getpid()))
        except OSError as exc:
            if exc.errno == errno.EEXIST:  # somebody claimed it since we looked
                with open_audit_socket() as control:
                    check_owner(read_status(control))
            raise AuditUnavailable(f"the kernel refused to send audit records here: {exc}") from exc
        self._changed_mask |= netlink.AUDIT_STATUS_PID

    def _configure(self, control: AuditSocket) -> None:
        settings = self.settings
        mask = netlink.AUDIT_STATUS_ENABLED | netlink.AUDIT_STATUS_BACKLOG_LIMIT
        if settings.backlog_wait_time is not None:
            mask |= netlink.AUDIT_STATUS_BACKLOG_WAIT_TIME
        if settings.rate_limit is not None:
            mask |= netlink.AUDIT_STATUS_RATE_LIMIT
        wanted = AuditStatus(
            mask=mask,
            enabled=1,
            backlog_limit=settings.backlog_limit,
            backlog_wait_time=settings.backlog_wait_time or 0,
            rate_limit=settings.rate_limit or 0,
        )
        try:
            control.set_status(wanted)
        except OSError as exc:
            raise AuditUnavailable(f"the kernel refused the audit settings: {exc}") from exc
        self._changed_mask |= mask

    def _install(self, control: AuditSocket) -> None:
        rules = [exclusion_rule(pid) for pid in self.exclude_pids] + self._watch_rules()
        for rule in rules:
            try:
                control.add_rule(rule)
            except OSError as exc:
                if exc.errno == errno.EEXIST:  # somebody else's identical rule: leave it be
                    log.warning("audit rule %s is already loaded; leaving it", rule.key)
                    continue
                raise AuditUnavailable(f"the kernel refused rule {rule.key}: {exc}") from exc
            self._added.append(rule.stored())

    def _start_threads(self) -> None:
        assert self._records_socket is not None
        self._records_socket.setblocking(False)
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._reader = threading.Thread(target=self._run, name="audit-reader", daemon=True)
        self._status_thread = threading.Thread(
            target=self._status_loop, name="audit-status", daemon=True
        )
        self._reader.start()
        self._status_thread.start()

    # -- the reader thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug must hang neither the consumer nor the host
            self.failure = exc
            log.exception("audit reader failed; giving the audit records back to the kernel")
            if self._records_socket is not None:
                self._records_socket.close()  # the kernel stops sending to us at once
            self._release_kernel()
        final: list[Event] = []
        try:
            final = self._stream.close()
        except Exception:
            log.exception("audit stream failed to close")
        with self._cond:
            if final:
                self._batches.append(final)
                self._queued += len(final)
            self._finished = True
            self._cond.notify_all()

    def _loop(self) -> None:
        records = self._records_socket
        assert records is not None
        buffer = bytearray(_RECEIVE_BYTES)
        view = memoryview(buffer)
        state = _ReaderState(last_data=time.monotonic())
        pending: list[Event] = []
        for message in records.unsolicited:  # what came while start() waited for replies
            if message.type >= netlink.AUDIT_FIRST_RECORD:
                self._record(message.type, message.payload, pending)
        records.unsolicited.clear()
        inbox = self._inbox
        stopping = self._stopping
        while True:
            try:
                size = records.receive_into(buffer)
            except BlockingIOError:
                if self._on_idle(state, pending):
                    return
                pending = []
                continue
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self._overruns += 1
                pending.append(self._gap(0, "socket_overrun"))
                continue
            state.last_data = time.monotonic()
            state.dirty = True
            self._receive(view, size, pending)
            while inbox:
                pending.append(inbox.popleft())
            if len(pending) >= _BATCH or stopping.is_set():
                self._deliver(pending)
                pending = []
                if stopping.is_set() and state.last_data >= self._drain_deadline:
                    return

    def _on_idle(self, state: _ReaderState, pending: list[Event]) -> bool:
        """Nothing to receive: close events left open once quiet long enough, hand over
        what is pending, then wait for data. True when the reader should end."""
        now = time.monotonic()
        while self._inbox:
            pending.append(self._inbox.popleft())
        if state.dirty and now - state.last_data >= self.settings.idle_flush_s:
            pending += self._stream.flush_pending()
            state.dirty = False
        self._deliver(pending)
        if self._stopping.is_set():
            if now - state.last_data >= _DRAIN_IDLE_S or now >= self._drain_deadline:
                return True
            timeout = _DRAIN_IDLE_S / 2
        elif state.dirty:
            timeout = state.last_data + self.settings.idle_flush_s - now
        else:
            timeout = _IDLE_WAIT_S
        self._wait(max(timeout, 0.0))
        return False

    def _wait(self, timeout: float) -> None:
        assert self._records_socket is not None
        wake = self._wake_read
        ready, _, _ = select.select([self._records_socket.fileno(), wake], [], [], timeout)
        if wake in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake, 64)
        elif ready and not self._stopping.is_set():
            time.sleep(self.settings.read_linger_s)

    def _receive(self, view: memoryview, size: int, pending: list[Event]) -> None:
        """Handle one datagram. A record (always alone in its datagram) takes the fast path;
        anything else (a late reply) goes through :func:`netlink.parse_messages`."""
        if size < netlink.HEADER_SIZE:
            return
        (msg_type,) = _TYPE.unpack_from(view, 4)
        if msg_type >= netlink.AUDIT_FIRST_RECORD:
            self._record(msg_type, bytes(view[netlink.HEADER_SIZE : size]), pending)
            return
        try:
            messages = netlink.parse_messages(view[:size])
        except ParseError as exc:
            self.report.reject(exc)
            return
        for message in messages:
            if message.type >= netlink.AUDIT_FIRST_RECORD:
                self._record(message.type, message.payload, pending)

    def _record(self, msg_type: int, payload: bytes, pending: list[Event]) -> None:
        self._records += 1
        line = self._records
        kind = RECORD_TYPES.get(msg_type) or record_type_name(msg_type)
        wanted = kind in WANTED_TYPES
        if wanted or self._tap is not None:
            text = f"type={kind} msg={netlink.record_text(payload)}"
            if self._tap is not None:
                self._tap(text.encode())
        if not wanted:
            self._stream.skip(kind)
            return
        try:
            if kind == "EOE":  # no fields: only the stamp matters
                stamp = split_audit_line(text, source=SOURCE, line=line)[1]
                record = AuditRecord(kind, stamp, {}, "", line)
            else:
                record = self._parser.parse_line(text, source=SOURCE, line=line)
        except ParseError as exc:
            self.report.reject(exc)
            return
        pending += self._stream.push(record)

    def _deliver(self, events: list[Event]) -> None:
        if not events:
            return
        with self._cond:
            # once stop() begins, nobody may be polling any more: never wait for room then
            while self._queued >= self.settings.queue_events and not self._stop_requested:
                self._cond.wait(0.1)
            self._batches.append(events)
            self._queued += len(events)
            self._cond.notify_all()

    # -- the status thread ----------------------------------------------------------------

    def _status_loop(self) -> None:
        control = self._status_socket
        assert control is not None
        while not self._stopping.wait(self.settings.status_interval_s):
            gap = self._poll_status(control)
            if gap is not None:
                self._inbox.append(gap)
                self._wake()

    def _poll_status(self, control: AuditSocket) -> Event | None:
        """Read the kernel's counters; a ``gap`` event when it lost records since the last
        poll."""
        try:
            status = control.get_status()
        except (OSError, ParseError) as exc:
            log.warning("audit status poll failed: %s", exc)
            return None
        with self._status_lock:
            self._backlog = status.backlog
            lost = status.lost - self._lost_seen
            if lost < 0:  # somebody reset the counter (auditctl --reset-lost)
                lost = status.lost
            self._lost_seen = status.lost
            if lost <= 0:
                return None
            self._kernel_lost += lost
            return self._gap(lost, "kernel_lost")

    def _final_status(self) -> None:
        """After the reader ended: count what the kernel lost during the drain."""
        try:
            with open_audit_socket() as control:
                gap = self._poll_status(control)
        except AuditUnavailable as exc:
            log.warning("final audit status poll failed: %s", exc)
            return
        with self._cond:
            tail = [*self._inbox, *([gap] if gap is not None else [])]
            self._inbox.clear()
            if tail:
                self._batches.append(tail)
                self._queued += len(tail)
                self._cond.notify_all()

    def _gap(self, count: int, reason: str) -> Event:
        self._gaps += 1
        return Event(
            timestamp=time.time_ns(),
            event=EventInfo(
                action=Action.GAP,
                id=f"{self._gap_prefix}:{self._gaps}",
                outcome="unknown",
                dataset=DATASET,
                count=count,
            ),
            host=self._event_host,
            process=Process(entity_id="", pid=0),
            auditd={"type": "GAP", "reason": reason},
        )

    # -- teardown -------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._wake_write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"x")

    def _remove_rules(self, *, keep: Sequence[int] = ()) -> None:
        """Delete the rules this source added, newest first, except the exclusions of
        ``keep`` pids (they go last, so that the teardown itself is never audited)."""
        kept = {exclusion_rule(pid).stored() for pid in keep}
        remaining: list[AuditRuleData] = []
        try:
            with open_audit_socket() as control:
                for rule in reversed(self._added):
                    if rule in kept:
                        remaining.insert(0, rule)
                        continue
                    try:
                        control.delete_rule(rule)
                    except OSError as exc:
                        if exc.errno != errno.ENOENT:  # ENOENT: somebody deleted it already
                            log.error("could not delete audit rule %s: %s", rule.key, exc)
                            remaining.insert(0, rule)
        except AuditUnavailable as exc:
            log.error("could not remove the audit rules: %s", exc)
            return
        self._added = remaining

    def _release_kernel(self) -> None:
        """Give the audit pid back and restore the settings changed, then delete every rule
        still installed. Runs once, from whichever thread gets here first."""
        with self._release_lock:
            if self._released:
                return
            self._released = True
        previous = self._previous
        if previous is not None and self._changed_mask:
            restore = dataclasses.replace(previous, mask=self._changed_mask, pid=0)
            try:
                with open_audit_socket() as control:
                    control.set_status(restore)
            except (OSError, AuditUnavailable) as exc:
                log.error("could not restore the kernel audit settings: %s", exc)
        self._remove_rules()

    def _close_sockets(self) -> None:
        for sock in (self._records_socket, self._status_socket):
            if sock is not None:
                sock.close()
        for fd in (self._wake_read, self._wake_write):
            if fd >= 0:
                os.close(fd)
        self._wake_read = self._wake_write = -1
        with self._cond:
            self._finished = True
            self._cond.notify_all()
