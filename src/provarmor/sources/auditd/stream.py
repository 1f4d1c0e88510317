"""Records in, canonical events out: coalescer -> fork reordering -> mapper.

Shared by the ``audit.log`` importer and the live agent (which feeds records parsed from
netlink with :func:`provarmor.sources.auditd.records.parse_netlink_record`, and calls
:meth:`AuditEventStream.flush_pending` when the socket goes idle).
"""

from __future__ import annotations

from collections.abc import Sequence

from provarmor.model.errors import ParseError
from provarmor.model.event import Event
from provarmor.sources.auditd.coalescer import DEFAULT_WINDOW, AuditGroup, Coalescer
from provarmor.sources.auditd.mapper import AuditMapper
from provarmor.sources.auditd.ordering import DEFAULT_LOOKAHEAD, ForkReorderer
from provarmor.sources.auditd.process_table import ProcessTable
from provarmor.sources.auditd.records import WANTED_TYPES, AuditRecord
from provarmor.sources.base import HostContext, IngestReport


class AuditEventStream:
    """Turns audit records, in arrival order, into canonical events. Not thread-safe."""

    def __init__(  # noqa: PLR0913  (tuning knobs, all optional)
        self,
        *,
        host: HostContext,
        report: IngestReport,
        source: str = "",
        table: ProcessTable | None = None,
        window: int = DEFAULT_WINDOW,
        lookahead: int = DEFAULT_LOOKAHEAD,
    ) -> None:
        self.report = report
        self.coalescer = Coalescer(window=window, source=source)
        self.reorderer = ForkReorderer(lookahead=lookahead)
        self.mapper = AuditMapper(host=host, report=report, source=source, table=table)

    @property
    def table(self) -> ProcessTable:
        return self.mapper.table

    def wants(self, record_type: str) -> bool:
        """Whether records of this type take part in events. Callers skip the others
        before parsing their fields; :meth:`skip` counts them."""
        return record_type in WANTED_TYPES

    def skip(self, record_type: str) -> None:
        self.report.skipped[record_type] += 1

    def push(self, record: AuditRecord) -> list[Event]:
        """Add one record; return the events it completed (often none)."""
        if record.type not in WANTED_TYPES:
            self.skip(record.type)
            return []
        try:
            closed = self.coalescer.push(record)
        except ParseError as exc:
            self.report.reject(exc)
            return []
        if not closed:
            return []
        return self._map(closed)

    def flush_pending(self) -> list[Event]:
        """Close every open group and release the look-ahead (idle or end of input)."""
        events = self._map(self.coalescer.flush())
        for group in self.reorderer.flush():
            events += self._map_one(group)
        return events

    def close(self) -> list[Event]:
        """End of input: flush everything and count what never resolved."""
        events = self.flush_pending()
        self.mapper.flush()
        return events

    def _map(self, groups: Sequence[AuditGroup]) -> list[Event]:
        events: list[Event] = []
        for group in groups:
            if group.syscall is None:
                self.report.skipped["incomplete_event"] += 1
                continue
            for ready in self.reorderer.push(group):
                events += self._map_one(ready)
        return events

    def _map_one(self, group: AuditGroup) -> list[Event]:
        try:
            events = self.mapper.map_group(group)
        except ParseError as exc:
            self.report.reject(exc)
            return []
        self.report.events += len(events)
        return events
