"""Query parameters shared by the list routes: time bounds and paging."""

from __future__ import annotations

from datetime import datetime

from provarmor.manager.deps import ApiError
from provarmor.manager.store import Page

MAX_LIMIT = 1000


def parse_time(text: str | None, *, field: str) -> int:
    """Nanoseconds since the epoch from an integer (ns) or an ISO-8601 time; 0 when absent."""
    if text is None or not text.strip():
        return 0
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400, "expected nanoseconds since the epoch or an ISO-8601 time", field=field
        ) from None
    if moment.tzinfo is None:
        raise ApiError(400, "an ISO-8601 time needs a UTC offset (Z or +00:00)", field=field)
    return int(moment.timestamp() * 1_000_000) * 1000


def page(limit: int, offset: int) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if offset < 0:
        raise ApiError(400, "offset must not be negative", field="offset")
    return Page(limit=limit, offset=offset)
