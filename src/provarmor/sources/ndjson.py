"""Importer for ProvArmor's own canonical NDJSON (plain or gzip).

Reads large blocks and decodes every complete line of a block in one call (msgspec's
``decode_lines``); only a block holding a bad record is decoded again line by line, so
every good record keeps flowing and the bad one is reported with its line number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from provarmor.model.codec import MAX_RECORD_BYTES, parse_ndjson_batch
from provarmor.model.errors import ParseError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.lines import open_binary

BLOCK_BYTES = 4 * 1024 * 1024
READ_BYTES = 256 * 1024
"""Reads are this size, so a truncated gzip member loses at most this much to the cut."""
_decoder = msgspec.json.Decoder(Event)


def read_ndjson(path: Path, *, report: IngestReport, host: HostContext) -> Iterator[Event]:
    """Stream canonical events from ``path``. ``host`` is unused: the records carry it."""
    del host
    source = str(path)
    line = 1  # number of the first line of ``pending``
    pending = b""
    with open_binary(path) as handle:
        broken = False
        while not broken:
            parts: list[bytes] = []
            size = 0
            while size < BLOCK_BYTES:
                try:
                    part = handle.read(READ_BYTES)
                except (EOFError, OSError) as exc:
                    report.records += 1
                    at = line + sum(piece.count(b"\n") for piece in parts)
                    location = f"{source}:{at}"
                    report.reject(ParseError(f"unreadable data: {exc}", location=location))
                    broken = True
                    break
                if not part:
                    break
                parts.append(part)
                size += len(part)
            block = b"".join(parts)
            if not block:
                break
            data = pending + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if len(data) > MAX_RECORD_BYTES:  # one endless line: drop what we have
                    report.records += 1
                    report.reject(ParseError("line too long", location=f"{source}:{line}"))
                    pending = b""
                    continue
                pending = data
                continue
            pending = data[cut:]
            yield from _decode_block(data[:cut], source=source, first_line=line, report=report)
            line += data.count(b"\n", 0, cut)
        if pending.strip():
            yield from _decode_block(pending, source=source, first_line=line, report=report)


def _decode_block(
    block: bytes, *, source: str, first_line: int, report: IngestReport
) -> Iterator[Event]:
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
    events, errors = parse_ndjson_batch(lines, source=source, first_line=first_line)
    report.records += sum(1 for item in lines if item.strip())
    for error in errors:
        report.reject(error)
    report.events += len(events)
    yield from events
