"""Group the records of one audit event: every record stamped ``audit(TIME:SERIAL)`` alike.

The kernel writes a syscall event as SYSCALL, auxiliary records (EXECVE, SOCKADDR, CWD,
PATH...), PROCTITLE and, on netlink only, EOE (auditd consumes EOE and does not write it to
``audit.log``). Records of concurrent events interleave, so groups stay open side by side.

A group is closed:

* by its EOE or PROCTITLE record (PROCTITLE is the last record the kernel writes before EOE);
* when ``window`` newer events (new serials) have started since it did (the reorder
  window), or when more than ``max_open`` groups are open (oldest first);
* at the end of input (:meth:`Coalescer.flush`).

A group closed without its SYSCALL record, or a syscall group closed by the window or the end
of input, is *incomplete* (records were lost or the log was cut) and is counted. A record
arriving after its group was closed opens a new group that will lack its SYSCALL record.

The window counts events, not serial numbers, so one bad record stamped with a far-off serial
cannot close the groups still collecting their records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from provarmor.model.time_units import MAX_NS, NS_PER_MS, NS_PER_SECOND
from provarmor.sources.auditd.records import AuditRecord, parse_stamp

DEFAULT_WINDOW = 64
"""Newer events after which an open group is given up: the records of concurrent events
interleave by a few events at most (one per CPU)."""
DEFAULT_MAX_OPEN = 256

_NOTHING: tuple[AuditGroup, ...] = ()


@dataclass(slots=True)
class AuditGroup:
    """The records of one event, in arrival order, with its SYSCALL record when seen."""

    stamp: str
    serial: int
    timestamp: int
    line: int
    """Line of the group's first record (0 when not from a file)."""
    order: int = 0
    """How many groups the coalescer had opened when this one opened (itself included)."""
    records: list[AuditRecord] = field(default_factory=list)
    syscall: AuditRecord | None = None
    complete: bool = False
    """Closed by its own PROCTITLE/EOE record rather than by the window or end of input."""

    def add(self, record: AuditRecord) -> None:
        if record.type == "SYSCALL":
            self.syscall = record
        self.records.append(record)


class Coalescer:
    """Turn a stream of records into a stream of closed groups. Not thread-safe."""

    def __init__(
        self, *, window: int = DEFAULT_WINDOW, max_open: int = DEFAULT_MAX_OPEN, source: str = ""
    ) -> None:
        self._open: dict[str, AuditGroup] = {}
        self._source = source
        self._window = window
        self._max_open = max_open
        self._opened = 0
        self.groups = 0
        """Groups closed so far."""
        self.incomplete = 0
        """Closed groups that lacked their SYSCALL record or their end."""

    def push(self, record: AuditRecord) -> Sequence[AuditGroup]:
        """Add one record; return the groups this closed (usually none or one).

        Raises :class:`ParseError` when the record opens a group and its stamp is malformed.
        """
        group = self._open.get(record.stamp)
        if record.type == "EOE" or record.type == "PROCTITLE":
            if group is None:
                if record.type == "EOE":
                    return _NOTHING
                group = self._new_group(record)
            else:
                del self._open[record.stamp]
            group.add(record)
            group.complete = True
            return [*self._expire(), self._close(group)]
        if group is not None:
            group.add(record)
            return _NOTHING
        group = self._new_group(record)
        closed = self._expire()
        group.add(record)
        self._open[record.stamp] = group
        return closed

    def flush(self) -> list[AuditGroup]:
        """Close every open group (end of input)."""
        groups = [self._close(group) for group in self._open.values()]
        self._open.clear()
        return groups

    def _new_group(self, record: AuditRecord) -> AuditGroup:
        self._opened += 1
        stamp = record.stamp
        seconds, _, rest = stamp.partition(".")
        fraction, _, serial = rest.partition(":")
        if len(fraction) == 3 and seconds.isdigit() and fraction.isdigit() and serial.isdigit():
            # the usual milliseconds stamp; int() of ASCII digits cannot fail
            timestamp = int(seconds) * NS_PER_SECOND + int(fraction) * NS_PER_MS
            if (
                len(seconds) <= 12
                and timestamp <= MAX_NS
                and len(serial) <= 20
                and seconds.isascii()
            ):
                return AuditGroup(stamp, int(serial), timestamp, record.line, self._opened)
        timestamp, number = parse_stamp(stamp, source=self._source, line=record.line)
        return AuditGroup(stamp, number, timestamp, record.line, self._opened)

    @property
    def open_groups(self) -> int:
        return len(self._open)

    def _expire(self) -> Sequence[AuditGroup]:
        if not self._open:
            return _NOTHING
        closed: list[AuditGroup] = []
        limit = self._opened - self._window
        while self._open:
            stamp, oldest = next(iter(self._open.items()))
            if oldest.order > limit and len(self._open) < self._max_open:
                break
            del self._open[stamp]
            closed.append(self._close(oldest))
        return closed

    def _close(self, group: AuditGroup) -> AuditGroup:
        self.groups += 1
        if group.syscall is None or not group.complete:
            self.incomplete += 1
        return group
