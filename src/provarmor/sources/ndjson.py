"""Importer for ProvArmor's own canonical NDJSON (plain or gzip)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from provarmor.model.codec import parse_ndjson_batch
from provarmor.model.errors import ParseError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.lines import iter_lines, open_binary

BATCH_LINES = 2048


def read_ndjson(path: Path, *, report: IngestReport, host: HostContext) -> Iterator[Event]:
    """Stream canonical events from ``path``. ``host`` is unused: the records carry it."""
    del host
    source = str(path)
    line_errors: list[ParseError] = []
    with open_binary(path) as handle:
        batch: list[bytes] = []
        first = 1
        for number, line in iter_lines(handle, source=source, errors=line_errors):
            if not batch:
                first = number
            elif number != first + len(batch):
                yield from _flush(batch, first, source, report)
                batch, first = [], number
            batch.append(line)
            if len(batch) >= BATCH_LINES:
                yield from _flush(batch, first, source, report)
                batch = []
        yield from _flush(batch, first, source, report)
    for error in line_errors:
        report.records += 1
        report.reject(error)


def _flush(batch: list[bytes], first: int, source: str, report: IngestReport) -> Iterator[Event]:
    if not batch:
        return
    events, errors = parse_ndjson_batch(batch, source=source, first_line=first)
    report.records += sum(1 for line in batch if line.strip())
    for error in errors:
        report.reject(error)
    report.events += len(events)
    yield from events
