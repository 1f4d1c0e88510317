"""Parsing of one sysdig JSON line (``sysdig -j``, NodLink's data set) into a typed record.

Field names are sysdig's (``evt.type``, ``proc.cmdline``, ``fd.name`` ...); any subset may be
present. Values may be numbers or strings; ``<NA>`` and ``null`` mean absent. Ground-truth
columns that labelled data sets add (``is_warn``, ``label`` ...) are removed here, before
anything else sees the record, and reported so the caller can count them.

Pure functions only: bytes in, :class:`SysdigRecord` out, :class:`ParseError` on bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from provarmor.model.errors import ParseError
from provarmor.model.time_units import MAX_NS, NS_PER_MS, NS_PER_SECOND, NS_PER_US

GROUND_TRUTH_FIELDS = frozenset(
    {
        "is_warn",
        "label",
        "labels",
        "is_attack",
        "attack",
        "malicious",
        "is_malicious",
        "tech_num",
        "anomaly_score",
        "anomaly_socre",
        "ground_truth",
    }
)
"""Labels some public data sets (NodLink's ``is_warn``, ``tech_num``, ``anomaly_socre``) carry.
They are answers, not observations: they never reach an event."""

_ABSENT = {"", "<NA>", "NULL", "null", "None"}
_TIME_FIELDS = ("evt.rawtime", "evt.outputtime", "evt.time", "evt.datetime", "evt.time.iso8601")
_decoder = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class SysdigRecord:
    """One sysdig event with its fields as text (``fields``) and parsed ``evt.args``."""

    timestamp: int
    type: str
    direction: str
    fields: dict[str, str]
    args: dict[str, str] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()

    def text(self, name: str) -> str:
        return self.fields.get(name, "")

    def number(self, name: str) -> int | None:
        return to_int(self.fields.get(name, ""))


def parse_sysdig_line(line: bytes, *, location: str) -> SysdigRecord:
    """Decode one JSON line. Requires ``evt.type`` and a time field."""
    try:
        raw = _decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"not JSON: {exc}", location=location) from None
    if not isinstance(raw, dict):
        raise ParseError("a sysdig record must be a JSON object", location=location)
    dropped = tuple(sorted(key for key in raw if key in GROUND_TRUTH_FIELDS))
    fields = {
        str(key): text
        for key, value in raw.items()
        if key not in GROUND_TRUTH_FIELDS and (text := _as_text(value)) not in _ABSENT
    }
    evt_type = fields.get("evt.type", "")
    if not re.fullmatch(r"[a-z_0-9]{1,40}", evt_type):
        raise ParseError(f"missing or bad evt.type {evt_type[:40]!r}", location=location)
    timestamp = _timestamp(fields, location=location)
    args = parse_args(fields.get("evt.args") or fields.get("evt.info") or "")
    direction = fields.get("evt.dir", "")
    return SysdigRecord(timestamp, evt_type, direction, fields, args, dropped)


def _as_text(value: object) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return ""


_KEY = re.compile(r"(?:^|\s)([A-Za-z_][\w.]*)=")


def parse_args(text: str) -> dict[str, str]:
    """``evt.args`` (``res=0 fd=3(<f>/tmp/x) name=x``) as a dict; later keys do not override."""
    result: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        result.setdefault(match[1], text[match.end() : end].strip())
    return result


_LEADING_INT = re.compile(r"\s*(-?\d+)")


def to_int(text: str) -> int | None:
    """The integer at the start of ``text`` (``-2(ENOENT)`` -> -2), else ``None``."""
    if text.isdigit():
        return int(text)
    match = _LEADING_INT.match(text)
    return int(match[1]) if match else None


def _timestamp(fields: dict[str, str], *, location: str) -> int:
    for name in _TIME_FIELDS:
        value = fields.get(name)
        if value:
            parsed = parse_time(value)
            if parsed is not None:
                return parsed
    raise ParseError("no usable time in evt.rawtime/outputtime/time/datetime", location=location)


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(text: str) -> int | None:
    """Nanoseconds since the epoch from any time form sysdig writes (:func:`_parse_time`);
    ``None`` for a time past 2262, which no int64 nanosecond count holds."""
    ns = _parse_time(text)
    return ns if ns is not None and ns <= MAX_NS else None


def _parse_time(text: str) -> int | None:
    """Nanoseconds since the epoch from any time form sysdig writes.

    Integers are taken by magnitude (ns, us, ms or s); a decimal number is seconds;
    ISO 8601 and ``YYYY-MM-DD HH:MM:SS.nnnnnnnnn`` are UTC unless they carry an offset.
    A bare clock time (``evt.time`` ``14:18:49.123456789``, sysdig's default) has no date:
    it becomes nanoseconds since midnight, which keeps order within one capture day.
    """
    text = text.strip()
    if re.fullmatch(r"\d{1,20}", text):
        return _scale(int(text))
    if re.fullmatch(r"\d{1,11}\.\d{1,9}", text):
        whole, fraction = text.split(".")
        return int(whole) * NS_PER_SECOND + _fraction(fraction)
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = int(clock[1]), int(clock[2]), int(clock[3])
        if hours > 23 or minutes > 59 or seconds > 60:
            return None
        return ((hours * 60 + minutes) * 60 + seconds) * NS_PER_SECOND + _fraction(clock[4])
    return _parse_datetime(text)


def _parse_datetime(text: str) -> int | None:
    match = _DATETIME.match(text)
    if not match:
        return None
    zone = (match[8] or "+00:00").replace("Z", "+00:00")
    if ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    try:
        moment = datetime.fromisoformat(
            f"{match[1]}-{match[2]}-{match[3]}T{match[4]}:{match[5]}:{match[6]}{zone}"
        )
    except ValueError:
        return None
    seconds = int(moment.astimezone(UTC).timestamp())
    return seconds * NS_PER_SECOND + _fraction(match[7])


def _fraction(digits: str | None) -> int:
    return int((digits or "0").ljust(9, "0")[:9])


INT64_MAX = 2**63 - 1


def _scale(value: int) -> int | None:
    if value > INT64_MAX:
        return None
    if value >= 10**17:
        return value
    if value >= 10**14:
        return value * NS_PER_US
    if value >= 10**11:
        return value * NS_PER_MS
    return value * NS_PER_SECOND if value < 10**10 else None
