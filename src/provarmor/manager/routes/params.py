"""Query parameters shared by the list routes: time bounds and paging.

Every number here ends up in a 64-bit database column, so each is checked to fit one (a
400 naming the parameter, never an overflow deeper down).
"""

from __future__ import annotations

import re
from datetime import datetime

from provarmor.manager.deps import ApiError
from provarmor.manager.store import Page

MAX_LIMIT = 1000
MAX_INT64 = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_int64(text: str, *, field: str, what: str) -> int:
    """A non-negative integer that fits a signed 64-bit column, from ASCII digits."""
    value = text.strip()
    if not _DIGITS.fullmatch(value) or int(value) > MAX_INT64:
        raise ApiError(400, f"{what} must be an integer from 0 to {MAX_INT64}", field=field)
    return int(value)


def parse_time(text: str | None, *, field: str) -> int:
    """Nanoseconds since the epoch from an integer (ns) or an ISO-8601 time; 0 when absent.
    Times before 1970 or past 2262 (out of 64-bit nanoseconds) are a 400."""
    if text is None or not text.strip():
        return 0
    value = text.strip()
    if value.isascii() and value.isdigit():
        return parse_int64(value, field=field, what="a time in nanoseconds")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400, "expected nanoseconds since the epoch or an ISO-8601 time", field=field
        ) from None
    if moment.tzinfo is None:
        raise ApiError(400, "an ISO-8601 time needs a UTC offset (Z or +00:00)", field=field)
    nanoseconds = int(moment.timestamp() * 1_000_000) * 1000
    if not 0 <= nanoseconds <= MAX_INT64:
        raise ApiError(400, "an ISO-8601 time must lie between 1970 and 2262", field=field)
    return nanoseconds


def page(limit: int, offset: int) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if not 0 <= offset <= MAX_INT64:
        raise ApiError(400, f"offset must be between 0 and {MAX_INT64}", field="offset")
    return Page(limit=limit, offset=offset)
