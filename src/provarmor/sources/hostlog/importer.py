"""The streaming loops of the journal and syslog importers.

Each non-blank line is one raw record (``report.records``) and becomes one event or one
reject (a :class:`ParseError` naming file and line); lines around a bad one are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from provarmor.model.errors import ParseError
from provarmor.model.event import Event, Host, LogRef
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.hostlog.events import EventIds, build_event
from provarmor.sources.hostlog.lines import LogLine, parse_journal_line, parse_syslog_line
from provarmor.sources.lines import InputEnded, iter_lines, open_binary

LineParser = Callable[[bytes, str], LogLine]


def _read(
    path: Path, *, report: IngestReport, host: HostContext, dataset: str, parse: LineParser
) -> Iterator[Event]:
    source = str(path)
    canonical_host = Host(id=host.id, name=host.name, boot_id=host.boot_id)
    line_errors: list[ParseError] = []
    ids = EventIds()
    with open_binary(path) as handle:
        for number, raw in iter_lines(handle, source=source, errors=line_errors):
            if not raw.strip():
                continue
            report.records += 1
            location = f"{source}:{number}"
            try:
                line = parse(raw, location)
            except ParseError as error:
                report.reject(error)
                if report.overwhelmed:
                    report.give_up(location)
                    break
                continue
            report.events += 1
            yield build_event(
                line,
                host=canonical_host,
                log=LogRef(file=source, line=number),
                dataset=dataset,
                occurrence=ids.occurrence(line, dataset=dataset),
            )
    for problem in line_errors:
        if isinstance(problem, InputEnded):
            report.stop(problem)
        else:
            report.records += 1
            report.reject(problem)


def read_journal(path: Path, *, report: IngestReport, host: HostContext) -> Iterator[Event]:
    """Stream canonical events from ``journalctl -o json`` output (plain or gzip)."""

    def parse(raw: bytes, location: str) -> LogLine:
        return parse_journal_line(raw, location=location)

    return _read(path, report=report, host=host, dataset="journald", parse=parse)


def syslog_text(raw: bytes) -> str:
    """A syslog line's text: UTF-8, or Latin-1 for the odd line that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_syslog(path: Path, *, report: IngestReport, host: HostContext) -> Iterator[Event]:
    """Stream canonical events from syslog text (RFC 3164, RFC 5424, Debian's auth.log),
    plain or gzip. RFC 3164 stamps take their year from the file's modification time."""
    written = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)

    def parse(raw: bytes, location: str) -> LogLine:
        return parse_syslog_line(syslog_text(raw), written=written, location=location)

    return _read(path, report=report, host=host, dataset="syslog", parse=parse)
