"""The streaming loop of the CDM importer: lines in, canonical events out, every record counted.

Each non-blank line is one raw record (``report.records``). It becomes one event, one reject
(a :class:`ParseError` naming file and line), or one ``report.skipped`` reason: definition
records (``definition:Subject`` ...), types deliberately left out (``close``), and events
that name nothing usable. Entities evicted from the bounded tables are counted under
``evicted_entity``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from provarmor.model.errors import ParseError
from provarmor.model.event import Event, Host, LogRef
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.cdm.definitions import apply_definition
from provarmor.sources.cdm.entities import CdmLimits, CdmState
from provarmor.sources.cdm.events import build_event
from provarmor.sources.cdm.records import EventRecord, canonical_uuid, parse_cdm_line
from provarmor.sources.lines import InputEnded, iter_lines, open_binary

EVICTED = "evicted_entity"


def read_cdm(
    path: Path, *, report: IngestReport, host: HostContext, limits: CdmLimits | None = None
) -> Iterator[Event]:
    """Stream canonical events from a CDM18 JSON file (plain or gzip).

    ``host`` names the machine when a record carries no ``hostId``; its ``boot_id`` is
    always used (CDM has none). ``limits`` bounds the UUID tables.
    """
    run = _Run(source=str(path), report=report, host=host, limits=limits or CdmLimits())
    line_errors: list[ParseError] = []
    with open_binary(path) as handle:
        for number, line in iter_lines(handle, source=run.source, errors=line_errors):
            if not line.strip():
                continue
            event = run.record(number, line)
            if event is not None:
                yield event
            elif report.overwhelmed:
                report.give_up(f"{run.source}:{number}")
                break
    for error in line_errors:
        if isinstance(error, InputEnded):
            report.stop(error)
        else:
            report.records += 1
            report.reject(error)


class _Run:
    """State of one file's import: the UUID tables, the host names and the report."""

    def __init__(
        self, *, source: str, report: IngestReport, host: HostContext, limits: CdmLimits
    ) -> None:
        self.source = source
        self.report = report
        self.state = CdmState(limits)
        self.hosts = _Hosts(host, self.state)
        self.evicted = 0

    def record(self, number: int, line: bytes) -> Event | None:
        """Account for one raw record and return its event, if it makes one."""
        self.report.records += 1
        event = self._decode(number, line)
        if event is not None:
            self.report.events += 1
        if self.state.evictions != self.evicted:
            self.report.skipped[EVICTED] += self.state.evictions - self.evicted
            self.evicted = self.state.evictions
        return event

    def _decode(self, number: int, line: bytes) -> Event | None:
        try:
            kind, record = parse_cdm_line(line, location=f"{self.source}:{number}")
        except ParseError as exc:
            self.report.reject(exc)
            return None
        if record is None:
            reason = "registry_key" if kind == "RegistryKeyObject" else f"definition:{kind[:48]}"
            self.report.skipped[reason] += 1
            return None
        if not isinstance(record, EventRecord):
            apply_definition(record, self.state)
            self.report.skipped[f"definition:{kind}"] += 1
            return None
        log = LogRef(file=self.source, line=number, record=canonical_uuid(record.uuid))
        host = self.hosts.of(record.host_id)
        result = build_event(record, state=self.state, host=host, log=log)
        if isinstance(result, str):
            self.report.skipped[result] += 1
            return None
        return result


class _Hosts:
    """One :class:`Host` value per CDM host id, named from the Host records seen so far."""

    def __init__(self, context: HostContext, state: CdmState) -> None:
        self._context = context
        self._state = state
        self._default = Host(id=context.id, name=context.name, boot_id=context.boot_id)
        self._known: dict[str, Host] = {}

    def of(self, host_id: str | None) -> Host:
        if not host_id:
            return self._default
        uuid = canonical_uuid(host_id)
        name = self._state.host_names.get(uuid, "")
        known = self._known.get(uuid)
        if known is None or known.name != name:
            if len(self._known) >= self._state.limits.principals:
                self._known.clear()
            known = Host(id=uuid, name=name, boot_id=self._context.boot_id)
            self._known[uuid] = known
        return known
