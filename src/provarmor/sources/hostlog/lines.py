"""One logged line, as syslog text or a journal entry gives it, and the parsers of both.

``parse_*`` are pure: text in, :class:`LogLine` out, :class:`ParseError` naming the location
for anything that is not a log line.

Syslog shapes read:

* RFC 5424: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`` (``-`` for a missing part);
* RFC 3339 time first, as Debian 12's rsyslog writes ``/var/log/auth.log``:
  ``2026-12-06T18:02:40.545693+00:00 host prog[pid]: text``;
* RFC 3164 / traditional files: ``[<PRI>]Dec  6 18:02:40 host prog[pid]: text``. The line has
  no year: the caller gives the one the file was written in (see :func:`parse_syslog_line`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from msgspec import Struct

from provarmor.model.errors import ParseError

NS_PER_SECOND = 1_000_000_000
NS_PER_MICROSECOND = 1_000


class LogLine(Struct, frozen=True, kw_only=True, gc=False):
    """A logged line: when (ns since the epoch), where, which program and pid, what."""

    timestamp: int
    hostname: str
    program: str
    pid: int
    message: str
    boot_id: str = ""
    facility: int = -1
    """Syslog facility number (4 auth, 10 authpriv, 9 cron ...); -1 when not given."""
    cursor: str = ""
    """The journal's cursor of the entry (``__CURSOR``), where a follower resumes."""


_PRI = r"(?:<(?P<pri>\d{1,3})>)?"
_TAG = r"(?P<program>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:"
_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<time>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) (?P<rest>.*)$",
    re.DOTALL,
)
_RFC3339 = re.compile(
    _PRI + r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) "
    r"(?P<host>\S+) " + _TAG + r" ?(?P<message>.*)$",
    re.DOTALL,
)
_RFC3164 = re.compile(
    _PRI + r"(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d) "
    r"(?P<host>\S+) " + _TAG + r" ?(?P<message>.*)$",
    re.DOTALL,
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_STRUCTURED_DATA = re.compile(r'(?:-|(?:\[(?:[^\]"\\]|"(?:[^"\\]|\\.)*")*\])+)(?: (?P<msg>.*))?$')


def _facility(pri: str | None, *, location: str) -> int:
    if pri is None:
        return -1
    value = int(pri)
    if value > 191:
        raise ParseError(f"syslog priority {value} is out of range (0-191)", location=location)
    return value >> 3


def _iso_ns(text: str, *, location: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"bad timestamp {text[:40]!r}", location=location) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(moment.timestamp())
    return seconds * NS_PER_SECOND + moment.microsecond * NS_PER_MICROSECOND


def _pid(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) <= 10 else 0


def parse_syslog_line(line: str, *, written: datetime, location: str) -> LogLine:
    """One syslog text line in any of the three shapes. ``written`` (when the file was last
    written) completes RFC 3164 stamps, which have no year: its year, or the year before for
    a month later than its own (December lines in a file written in January)."""
    match = _RFC5424.match(line)
    if match is not None:
        return _from_rfc5424(match, location=location)
    match = _RFC3339.match(line)
    if match is not None:
        return LogLine(
            timestamp=_iso_ns(match["time"], location=location),
            hostname=match["host"],
            program=match["program"],
            pid=_pid(match["pid"]),
            message=match["message"],
            facility=_facility(match["pri"], location=location),
        )
    match = _RFC3164.match(line)
    if match is not None:
        return _from_rfc3164(match, written=written, location=location)
    raise ParseError(
        "not a syslog line (RFC 3164, RFC 5424 or RFC 3339-stamped)", location=location
    )


def _from_rfc5424(match: re.Match[str], *, location: str) -> LogLine:
    rest = _STRUCTURED_DATA.match(match["rest"])
    if rest is None:
        raise ParseError("RFC 5424 line with malformed structured data", location=location)
    message = rest["msg"] or ""
    if message.startswith("\ufeff"):
        message = message[1:]
    app = match["app"]
    return LogLine(
        timestamp=_iso_ns(match["time"], location=location),
        hostname="" if match["host"] == "-" else match["host"],
        program="" if app == "-" else app,
        pid=_pid(match["procid"]),
        message=message,
        facility=_facility(match["pri"], location=location),
    )


def _from_rfc3164(match: re.Match[str], *, written: datetime, location: str) -> LogLine:
    try:
        month = _MONTHS[match["month"]]
        year = written.year - 1 if month > written.month else written.year
        moment = datetime.strptime(
            f"{year} {month} {match['day']} {match['clock']}", "%Y %m %d %H:%M:%S"
        ).replace(tzinfo=UTC)
    except (KeyError, ValueError):
        raise ParseError(
            f"bad timestamp {match['month']} {match['day']} {match['clock']}", location=location
        ) from None
    return LogLine(
        timestamp=int(moment.timestamp()) * NS_PER_SECOND,
        hostname=match["host"],
        program=match["program"],
        pid=_pid(match["pid"]),
        message=match["message"],
        facility=_facility(match["pri"], location=location),
    )


def _journal_text(value: object, *, field: str, location: str) -> str:
    """A journal field: text, or a byte array (how ``journalctl -o json`` writes a value
    that is not UTF-8); a field given several times keeps its first value."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(isinstance(item, int) and 0 <= item < 256 for item in value):
            return bytes(value).decode("utf-8", "replace")
        return _journal_text(value[0], field=field, location=location)
    raise ParseError(f"journal field {field} is neither text nor bytes", location=location)


def parse_journal_line(line: bytes | str, *, location: str) -> LogLine:
    """One entry of ``journalctl -o json`` (one JSON object per line)."""
    try:
        entry = json.loads(line)
    except ValueError as error:
        raise ParseError(f"not JSON: {error}", location=location) from None
    if not isinstance(entry, dict):
        raise ParseError("a journal entry is a JSON object", location=location)
    fields = {
        key: _journal_text(value, field=key, location=location)
        for key, value in entry.items()
        if value is not None
    }
    stamp = fields.get("__REALTIME_TIMESTAMP", "")
    if not stamp.isdigit() or len(stamp) > 17:
        raise ParseError("journal entry without a valid __REALTIME_TIMESTAMP", location=location)
    if "MESSAGE" not in fields:
        raise ParseError("journal entry without MESSAGE", location=location)
    facility = fields.get("SYSLOG_FACILITY", "")
    return LogLine(
        timestamp=int(stamp) * NS_PER_MICROSECOND,
        hostname=fields.get("_HOSTNAME", ""),
        program=fields.get("SYSLOG_IDENTIFIER") or fields.get("_COMM", ""),
        pid=_pid(fields.get("SYSLOG_PID") or fields.get("_PID")),
        message=fields["MESSAGE"],
        boot_id=fields.get("_BOOT_ID", ""),
        facility=int(facility) if facility.isdigit() and len(facility) <= 3 else -1,
        cursor=fields.get("__CURSOR", ""),
    )
