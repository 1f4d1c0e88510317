"""The streaming loop of the sysdig importer: JSON lines in, canonical events out.

Each non-blank line is one raw record (``report.records``) and becomes one event, one reject
(a :class:`ParseError` naming file and line) or one ``report.skipped`` reason. Ground-truth
fields removed from a record are counted in ``report.dropped_fields`` by name; processes
evicted from the bounded process table are counted as ``skipped["evicted_process"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from provarmor.model.errors import ParseError
from provarmor.model.event import Event, Host, LogRef
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.lines import InputEnded, iter_lines, open_binary
from provarmor.sources.sysdig.events import build_event
from provarmor.sources.sysdig.fields import parse_sysdig_line
from provarmor.sources.sysdig.processes import ProcessTable

EVICTED = "evicted_process"


def read_sysdig(
    path: Path, *, report: IngestReport, host: HostContext, max_processes: int = 200_000
) -> Iterator[Event]:
    """Stream canonical events from sysdig JSON lines (plain or gzip).

    ``host`` names the machine (sysdig records do not); its id and boot id are part of every
    process entity id. ``max_processes`` bounds the process table.
    """
    source = str(path)
    table = ProcessTable(host, capacity=max_processes)
    canonical_host = Host(id=host.id, name=host.name, boot_id=host.boot_id)
    line_errors: list[ParseError] = []
    evicted = 0
    with open_binary(path) as handle:
        for number, line in iter_lines(handle, source=source, errors=line_errors):
            if not line.strip():
                continue
            report.records += 1
            try:
                record = parse_sysdig_line(line, location=f"{source}:{number}")
            except ParseError as exc:
                report.reject(exc)
                if report.overwhelmed:
                    report.give_up(f"{source}:{number}")
                    break
                continue
            report.dropped_fields.update(record.dropped)
            log = LogRef(file=source, line=number, record=record.text("evt.num"))
            result = build_event(record, table=table, host=canonical_host, log=log)
            if table.evictions != evicted:
                report.skipped[EVICTED] += table.evictions - evicted
                evicted = table.evictions
            if isinstance(result, str):
                report.skipped[result] += 1
                continue
            report.events += 1
            yield result
    for error in line_errors:
        if isinstance(error, InputEnded):
            report.stop(error)
        else:
            report.records += 1
            report.reject(error)
