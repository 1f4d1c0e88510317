"""The shared query parameters: time bounds (ns or ISO-8601 with an offset) and paging."""

import pytest

from provarmor.manager.deps import ApiError
from provarmor.manager.routes.params import MAX_LIMIT, page, parse_time
from provarmor.manager.store import Page


@pytest.mark.parametrize("text", [None, "", "   "])
def test_absent_time_is_zero(text):
    assert parse_time(text, field="since") == 0


def test_time_in_nanoseconds_is_taken_as_is():
    assert parse_time("1700000000123456789", field="since") == 1_700_000_000_123_456_789
    assert parse_time(" 42 ", field="since") == 42


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14T22:13:20Z", 1_700_000_000_000_000_000),
        ("2023-11-14T22:13:20.5+00:00", 1_700_000_000_500_000_000),
        ("2023-11-15T00:13:20+02:00", 1_700_000_000_000_000_000),
        ("2023-11-14T22:13:20.123456Z", 1_700_000_000_123_456_000),
    ],
)
def test_iso_time_becomes_nanoseconds(text, expected):
    assert parse_time(text, field="since") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "expected nanoseconds since the epoch or an ISO-8601 time"),
        ("-5", "expected nanoseconds since the epoch or an ISO-8601 time"),
        ("2023-11-14T22:13:20", "an ISO-8601 time needs a UTC offset (Z or +00:00)"),
    ],
)
def test_bad_time_is_a_400_naming_the_field(text, message):
    with pytest.raises(ApiError) as raised:
        parse_time(text, field="until")
    assert raised.value.status == 400
    assert raised.value.field == "until"
    assert raised.value.message == message


def test_page_bounds():
    assert page(1, 0) == Page(limit=1, offset=0)
    assert page(MAX_LIMIT, 7) == Page(limit=MAX_LIMIT, offset=7)
    for limit in (0, MAX_LIMIT + 1, -1):
        with pytest.raises(ApiError) as raised:
            page(limit, 0)
        assert (raised.value.status, raised.value.field) == (400, "limit")
    with pytest.raises(ApiError) as raised:
        page(10, -1)
    assert (raised.value.status, raised.value.field) == (400, "offset")
