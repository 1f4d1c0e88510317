"""Importer for recorded Linux audit logs (``audit.log`` as auditd writes it, RAW or
ENRICHED format, plain or gzip).

Registered in the importer registry by the lead as ``read_auditd``. Streams in constant
memory: the file is read in large blocks (decoding a block at once is much cheaper than a
line at a time), split into lines, parsed, grouped per event and mapped to canonical events.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from provarmor.model.errors import ParseError
from provarmor.model.event import Event
from provarmor.sources.auditd.records import WANTED_TYPES, RecordParser
from provarmor.sources.auditd.stream import AuditEventStream
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.lines import MAX_LINE_BYTES, open_binary, read_block

BLOCK_BYTES = 1024 * 1024


def read_auditd(path: Path, *, report: IngestReport, host: HostContext) -> Iterator[Event]:
    """Stream canonical events from the audit log at ``path``.

    Every line is one record; blank lines are ignored. A line that is not an audit record
    (truncated, binary garbage, bad stamp or encoding, longer than the line limit) is
    rejected with its ``file:line`` and the rest of the log is still read. Records of types
    that build no event (USER_*, DAEMON_*, CONFIG_CHANGE, BPRM_FCAPS...) are counted in
    ``report.skipped`` by type. A log that is mostly not audit records is given up on
    (``report.stopped``) once its rejects pass the allowance.
    """
    source = str(path)
    stream = AuditEventStream(host=host, report=report, source=source)
    parser = RecordParser()
    skipped = report.skipped
    with open_binary(path) as handle:
        for first, lines in iter_blocks(handle, source=source, report=report):
            records = 0
            for number, text in enumerate(lines, first):
                if not text or text.isspace():
                    continue
                records += 1
                try:
                    record = parser.parse_line(text, source=source, line=number)
                except ParseError as exc:
                    report.reject(exc)
                    continue
                if record.type not in WANTED_TYPES:
                    skipped[record.type] += 1
                    continue
                events = stream.push(record)
                if events:
                    report.records += records
                    records = 0
                    yield from events
            report.records += records
            if report.overwhelmed:
                report.give_up(f"{source}:{first + len(lines) - 1}")
                break
        yield from stream.close()


def iter_blocks(
    handle: io.BufferedIOBase, *, source: str, report: IngestReport
) -> Iterator[tuple[int, list[str]]]:
    """``(number of the first line, lines)`` for each block read: the text decoded as UTF-8
    (bad bytes become U+FFFD) and split at newlines only (``str.splitlines`` would also
    split at the ENRICHED format's 0x1d). Over-long lines and unreadable data are rejected
    into ``report`` (an over-long line comes back empty, keeping the numbering)."""
    number = 1
    pending = b""
    while True:
        block, ended = _read_block(handle, source=source, number=number, report=report)
        data = pending + block
        if block and not ended:
            cut = data.rfind(b"\n") + 1
            data, pending = data[:cut], data[cut:]
        else:  # end of input: the last line may lack its newline
            data, pending = (data if data.endswith(b"\n") or not data else data + b"\n"), b""
        lines = data.decode("utf-8", "replace").split("\n")[:-1]
        for index, text in enumerate(lines):
            if len(text) > MAX_LINE_BYTES:
                _reject_long(report, source=source, number=number + index)
                lines[index] = ""
            elif text.endswith("\r"):
                lines[index] = text.rstrip("\r")
        if lines:
            yield number, lines
            number += len(lines)
        if len(pending) > MAX_LINE_BYTES:
            _reject_long(report, source=source, number=number)
            number += 1
            pending = _skip_rest_of_line(handle)
        if not block or ended:
            return


def _read_block(
    handle: io.BufferedIOBase, *, source: str, number: int, report: IngestReport
) -> tuple[bytes, bool]:
    """The next block, and whether the input ended early. Data before a truncation is kept
    and the truncation reported at the line it cuts."""
    block, error = read_block(handle, BLOCK_BYTES)
    if error is None:
        return block, False
    at = number + block.count(b"\n")
    report.stop(ParseError(f"unreadable data: {error}", location=f"{source}:{at}"))
    return block, True


def _reject_long(report: IngestReport, *, source: str, number: int) -> None:
    report.records += 1
    report.reject(
        ParseError(f"line longer than {MAX_LINE_BYTES} bytes", location=f"{source}:{number}")
    )


def _skip_rest_of_line(handle: io.BufferedIOBase) -> bytes:
    """Read on to the end of an over-long line; return what follows it in the last block.
    A read error here is left to the next read, which meets it again and reports it."""
    while True:
        block, _error = read_block(handle, BLOCK_BYTES)
        if not block:
            return b""
        newline = block.find(b"\n")
        if newline >= 0:
            return block[newline + 1 :]
