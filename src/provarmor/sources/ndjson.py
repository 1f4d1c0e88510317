"""Importer for ProvArmor's own canonical NDJSON (plain or gzip).

Reads large blocks and decodes every complete line of a block in one call (msgspec's
``decode_lines``); only a block holding a bad record is decoded again line by line, so
every good record keeps flowing and the bad one is reported with its line number. A line
over :data:`~provarmor.model.codec.MAX_RECORD_BYTES` is rejected with its line number and
skipped to its end, never held whole; a truncated gzip member keeps every line before the
cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from provarmor.model.codec import MAX_RECORD_BYTES, parse_ndjson_batch
from provarmor.model.errors import ParseError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.lines import open_binary, read_block

BLOCK_BYTES = 4 * 1024 * 1024
SLICE_LINES = 10_000
"""A block holding a bad record is decoded again in slices of this many lines."""
_decoder = msgspec.json.Decoder(Event)


def read_ndjson(path: Path, *, report: IngestReport, host: HostContext) -> Iterator[Event]:
    """Stream canonical events from ``path``. ``host`` is unused: the records carry it."""
    del host
    source = str(path)
    line = 1  # number of the first line of ``pending``
    pending = b""
    skipping = False  # inside a line over the record limit: dropped up to its newline
    with open_binary(path) as handle:
        while True:
            block, error = read_block(handle, BLOCK_BYTES)
            data = block
            if skipping:
                newline = data.find(b"\n")
                skipping = newline < 0
                data = b"" if skipping else data[newline + 1 :]
                line += 0 if skipping else 1
            data = pending + data
            cut = data.rfind(b"\n") + 1
            if cut:
                yield from _decode_block(data[:cut], source=source, first_line=line, report=report)
                line += data.count(b"\n", 0, cut)
            pending = data[cut:]
            if len(pending) > MAX_RECORD_BYTES:
                _reject(report, f"line longer than {MAX_RECORD_BYTES} bytes", f"{source}:{line}")
                pending, skipping = b"", True
            if error is not None:
                report.stop(ParseError(f"unreadable data: {error}", location=f"{source}:{line}"))
            if report.overwhelmed:
                report.give_up(f"{source}:{line}")
                return
            if error is not None or not block:
                break
        if pending.strip():
            yield from _decode_block(pending, source=source, first_line=line, report=report)


def _reject(report: IngestReport, message: str, location: str) -> None:
    report.records += 1
    report.reject(ParseError(message, location=location))


def _has_long_line(block: bytes) -> bool:
    return len(block) > MAX_RECORD_BYTES and any(
        len(line) > MAX_RECORD_BYTES for line in block.split(b"\n")
    )


def _decode_block(
    block: bytes, *, source: str, first_line: int, report: IngestReport
) -> Iterator[Event]:
    events: list[Event] | None = None
    if not _has_long_line(block):
        try:
            events = _decoder.decode_lines(block)
        except (msgspec.DecodeError, UnicodeDecodeError):
            events = None
    if events is not None:
        report.records += len(events)
        report.events += len(events)
        yield from events
        return
    lines = block.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    for start in range(0, len(lines), SLICE_LINES):  # slices: an overwhelmed input stops soon
        if report.overwhelmed:
            return
        part = lines[start : start + SLICE_LINES]
        events, errors = parse_ndjson_batch(part, source=source, first_line=first_line + start)
        report.records += sum(1 for item in part if item.strip())
        for error in errors:
            report.reject(error)
        report.events += len(events)
        yield from events
