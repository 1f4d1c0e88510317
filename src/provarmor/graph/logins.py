"""Log events joined to the processes a kernel sensor saw, and the logins they tell of.

A host log names the program that wrote a line by pid only (sshd, sudo, cron), so its
importer gives that process an entity id made with a start time of 0
(:mod:`provarmor.sources.hostlog.events`): a node apart from the sensor's process. When the
same stream carries the sensor's events, :class:`LogJoin` gives such an event the entity id
of the sensor's process with that pid on that host, alive at the line's time (started at or
before it, not exited more than :data:`EXIT_GRACE_NS` before it: a daemon's last line often
reaches the journal after the daemon ended). A line no observed process matches (log-only
input, a process older than the sensor, one forgotten) keeps its own id, as without a
sensor, and is counted.

A successful remote login (an ``authenticate`` success naming a source address) joined to a
process becomes a :class:`Login`: who logged in, from where, how, and how many failed
attempts for that account from that address came in the :data:`FAILURE_WINDOW_NS` before it.
The graph builder shows it as a node (the source endpoint of that login) with a ``login``
edge to the process that accepted it.

Memory is bounded: at most ``max_processes`` pids (the processes seen starting most
recently) and ``max_failure_keys`` (host, address, account) failure counts (the most
recently failed) are kept; what is forgotten is counted in :class:`JoinCounters`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.model.ids import process_entity_id
from provarmor.model.time_units import seconds_to_ns

EXIT_GRACE_NS = seconds_to_ns(5)
# Read on the per-event path as a module global: on CPython 3.11 an attribute read on an
# Enum class goes through EnumType.__getattr__'s slow hook (~0.15 us; a global ~0.01 us).
_EXIT = Action.EXIT
FAILURE_WINDOW_NS = seconds_to_ns(600)
LOGIN = "login"
"""Edge action: a login's source endpoint -> the process that accepted the login."""


@dataclass(slots=True)
class JoinCounters:
    log_events: int = 0
    """Events of a host log (no program path, an entity id made without a start time)."""
    joined: int = 0
    unmatched: int = 0
    """Log events no observed process matched (log-only input, forgotten, or unseen)."""
    logins: int = 0
    processes_forgotten: int = 0
    failure_keys_forgotten: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """A successful remote login, joined to the process that accepted it."""

    host: str
    process: str
    """Entity id of the (sensor's) process that logged the acceptance."""
    user: str
    ip: str
    port: int
    method: str
    failures: int
    """Failed attempts for ``user`` from ``ip`` in the window before the login."""
    timestamp: int

    @property
    def node_id(self) -> str:
        return f"login:{self.host}:{self.ip}:{self.port}:{self.process}"

    @property
    def label(self) -> str:
        how = f" ({self.method})" if self.method else ""
        text = f"login of {self.user or '?'} from {self.ip}{how}"
        if self.failures:
            plural = "s" if self.failures != 1 else ""
            text += f" after {self.failures} failed attempt{plural}"
        return text


@dataclass(slots=True)
class _Seen:
    entity_id: str
    start: int
    exited: int = 0


@dataclass(slots=True, kw_only=True)
class JoinLimits:
    max_processes: int = 131_072
    max_failure_keys: int = 16_384


class LogJoin:
    """Feed every event in stream order to :meth:`join`; it returns the event as the graph
    should record it, and :meth:`take_login` the login that event told of (if any)."""

    def __init__(self, limits: JoinLimits | None = None) -> None:
        self.limits = limits or JoinLimits()
        self.counters = JoinCounters()
        self._processes: OrderedDict[tuple[str, int], _Seen] = OrderedDict()
        self._failures: OrderedDict[tuple[str, str, str], list[tuple[int, int]]] = OrderedDict()
        self._login: Login | None = None

    def join(self, event: Event) -> Event:
        process = event.process
        if (
            process.start == 0
            and not process.executable
            and process.entity_id == _log_entity_id(event)
        ):
            return self._join_log(event)
        if process.pid > 0:
            seen = self._processes.get((event.host.id, process.pid))
            if seen is None or seen.entity_id != process.entity_id:
                self._observe(event)
            elif event.event.action is _EXIT:
                seen.exited = event.timestamp
        return event

    def take_login(self) -> Login | None:
        """The login the last joined event told of, once."""
        login, self._login = self._login, None
        return login

    def _observe(self, event: Event) -> None:
        """A process seen for the first time (or a new one with a known pid)."""
        process = event.process
        key = (event.host.id, process.pid)
        seen = _Seen(process.entity_id, process.start or event.timestamp)
        self._processes.pop(key, None)
        self._processes[key] = seen
        if len(self._processes) > self.limits.max_processes:
            self._processes.popitem(last=False)
            self.counters.processes_forgotten += 1
        if event.event.action is Action.EXIT:
            seen.exited = event.timestamp

    def _join_log(self, event: Event) -> Event:
        self.counters.log_events += 1
        ts = event.timestamp
        seen = self._processes.get((event.host.id, event.process.pid))
        if seen is None or seen.start > ts or (seen.exited and seen.exited + EXIT_GRACE_NS < ts):
            self.counters.unmatched += 1
            self._count_failure(event)
            return event
        self.counters.joined += 1
        joined = msgspec.structs.replace(
            event, process=msgspec.structs.replace(event.process, entity_id=seen.entity_id)
        )
        self._count_failure(joined)
        self._note_login(joined)
        return joined

    def _count_failure(self, event: Event) -> None:
        key = _auth_key(event)
        method = event.authentication.method if event.authentication is not None else ""
        if key is None or event.event.outcome != "failure" or not method:
            return  # PAM's own failure lines repeat sshd's "Failed ..." ones: not counted
        attempts = self._failures.pop(key, [])
        attempts.append((event.timestamp, max(event.event.count, 1)))
        self._failures[key] = attempts
        if len(self._failures) > self.limits.max_failure_keys:
            self._failures.popitem(last=False)
            self.counters.failure_keys_forgotten += 1

    def _note_login(self, event: Event) -> None:
        key = _auth_key(event)
        if key is None or event.event.outcome != "success" or event.source is None:
            return
        since = event.timestamp - FAILURE_WINDOW_NS
        attempts = self._failures.pop(key, [])
        authentication = event.authentication
        self._login = Login(
            host=event.host.id,
            process=event.process.entity_id,
            user=key[2],
            ip=event.source.ip,
            port=event.source.port,
            method=authentication.method if authentication is not None else "",
            failures=sum(count for ts, count in attempts if ts >= since),
            timestamp=event.timestamp,
        )
        self.counters.logins += 1


def _log_entity_id(event: Event) -> str:
    """The entity id a host log gives the process it names (no start time known)."""
    return process_entity_id(
        host_id=event.host.id, boot_id=event.host.boot_id, pid=event.process.pid, start=0
    )


def _auth_key(event: Event) -> tuple[str, str, str] | None:
    """(host, source address, account) of a remote authentication, else None."""
    if event.event.action is not Action.AUTHENTICATE or event.source is None:
        return None
    if not event.source.ip:
        return None
    user = event.user.name if event.user is not None else ""
    return event.host.id, event.source.ip, user
