"""The shared query parameters: time bounds (ns or ISO-8601 with an offset) and paging."""

import json

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


TOO_BIG = str(2**63)


@pytest.mark.parametrize(
    "text", [TOO_BIG, "9" * 30, "9" * 5000, "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "١٢٣"]
)
def test_time_outside_64_bit_nanoseconds_is_a_400(text):
    with pytest.raises(ApiError) as raised:
        parse_time(text, field="since")
    assert (raised.value.status, raised.value.field) == (400, "since")


def test_latest_representable_time_is_accepted():
    assert parse_time(str(2**63 - 1), field="until") == 2**63 - 1
    assert parse_time("2262-04-11T23:47:16Z", field="until") == 9_223_372_036_000_000_000


def test_page_offset_over_64_bits_is_a_400():
    with pytest.raises(ApiError) as raised:
        page(10, 2**63)
    assert (raised.value.status, raised.value.field) == (400, "offset")


OUT_OF_RANGE = [
    ("/events", "since", TOO_BIG),
    ("/events", "until", "9999-12-31T23:59:59Z"),
    ("/events", "since", "0001-01-01T00:00:00+00:00"),
    ("/events", "offset", TOO_BIG),
    ("/events", "offset", "-1"),
    ("/events", "limit", TOO_BIG),
    ("/alerts", "since", "9" * 25),
    ("/alerts", "until", "0001-01-01T00:00:00Z"),
    ("/alerts", "offset", "1" + "0" * 30),
    ("/incidents", "offset", TOO_BIG),
    ("/stats/timeline", "since", "9999-12-31T23:59:59Z"),
]


@pytest.mark.parametrize(("path", "name", "value"), OUT_OF_RANGE)
def test_out_of_range_query_is_a_400_naming_the_field(manager, path, name, value):
    answer = manager.get(path, **{name: value})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == name


@pytest.mark.parametrize("value", [TOO_BIG, str(2**64 + 5), "9" * 5000])
def test_batch_sequence_over_64_bits_is_a_400(manager, value):
    agent_id, credential = manager.enroll()
    answer = manager.upload(agent_id, credential, sequence=value, body=b"")  # type: ignore[arg-type]
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "X-Batch-Sequence"
    latest = manager.upload(agent_id, credential, sequence=2**63 - 1, body=b"")
    assert latest.status_code == 200, latest.text
    assert latest.json()["acked_sequence"] == 2**63 - 1


def test_event_field_over_64_bits_is_a_400_and_later_batches_are_taken(manager, lab_lines):
    agent_id, credential = manager.enroll()
    event = json.loads(lab_lines[5])
    event["@timestamp"] = 2**63 + 5
    bad = manager.upload(agent_id, credential, sequence=1, body=json.dumps(event).encode())
    assert bad.status_code == 400, bad.text
    assert bad.json()["field"] == "batch:1"
    assert "@timestamp" in bad.json()["error"]
    good = manager.upload(agent_id, credential, sequence=1, body=b"".join(lab_lines[:50]))
    assert good.status_code == 200, good.text
    assert good.json()["events"] == 50
