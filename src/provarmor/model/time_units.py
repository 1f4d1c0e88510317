"""Time units. Events, alerts, incidents and the stores count time in whole nanoseconds
(since the epoch for a time; an int64, so up to the year 2262); settings, the command line
and people speak seconds, hours or milliseconds. Every conversion between them is made here.

A duration from a setting or the command line goes through :func:`seconds_to_ns`,
:func:`hours_to_ns` or :func:`ms_to_ns`, which refuse what no int64 nanosecond count can
hold (negative, not a number, infinite, past 2262) with a :class:`ConfigError` naming the
setting. Parsers that build a timestamp from digits they have bounded themselves multiply by
the constants (their own checks turn bad input into a ``ParseError``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provarmor.model.errors import ConfigError

NS_PER_SECOND = 1_000_000_000
NS_PER_HOUR = 3_600 * NS_PER_SECOND
NS_PER_MS = 1_000_000
NS_PER_US = 1_000
MAX_NS = 2**63 - 1
"""The largest int64: the latest time, and the longest duration, a nanosecond count holds."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_ns(value: float, per_unit: int, unit: str, what: str | None) -> int:
    scaled = value * per_unit  # an int stays exact, however large; a float may become inf
    if not (value >= 0 and scaled <= MAX_NS):  # NaN fails every comparison
        raise ConfigError(
            f"{value!r} {unit} is out of range (0 to {MAX_NS // per_unit:,} {unit})",
            location=what,
        )
    return scaled if isinstance(scaled, int) else round(scaled)


def seconds_to_ns(seconds: float, *, what: str | None = None) -> int:
    """``seconds`` in whole nanoseconds, rounded to the nearest (an int is exact).

    ``what`` names where the value came from (``detection.dedup_window_seconds``) for the
    error: a negative, NaN, infinite or too large value is a :class:`ConfigError`."""
    return _to_ns(seconds, NS_PER_SECOND, "seconds", what)


def hours_to_ns(hours: float, *, what: str | None = None) -> int:
    """``hours`` in whole nanoseconds; refused as :func:`seconds_to_ns` refuses."""
    return _to_ns(hours, NS_PER_HOUR, "hours", what)


def ms_to_ns(milliseconds: float, *, what: str | None = None) -> int:
    """``milliseconds`` in whole nanoseconds; refused as :func:`seconds_to_ns` refuses."""
    return _to_ns(milliseconds, NS_PER_MS, "milliseconds", what)


def ns_to_seconds(ns: int) -> float:
    """``ns`` nanoseconds in seconds, a float: :func:`seconds_to_ns` gives the same count
    back for durations up to 2**51 ns (about 26 days); a time since the epoch keeps about a
    quarter of a microsecond today."""
    return ns / NS_PER_SECOND


def ns_to_hours(ns: int) -> float:
    """``ns`` nanoseconds in hours (host-hours of recordings)."""
    return ns / NS_PER_HOUR


def ns_to_ms(ns: int) -> int:
    """``ns`` nanoseconds in whole milliseconds, rounded down (OCSF times are epoch ms)."""
    return ns // NS_PER_MS


def ns_to_iso(ns: int) -> str:
    """The time ``ns`` (since the epoch) as ISO 8601 UTC with microseconds, cut (not rounded)
    to the microsecond, exactly: no float on the way."""
    return (_EPOCH + timedelta(microseconds=ns // NS_PER_US)).isoformat(timespec="microseconds")
