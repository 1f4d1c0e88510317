import contextlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model import codec
from provarmor.model.actions import Action
from provarmor.model.errors import ParseError
from provarmor.testing.factories import make_event

EVENTS = [
    make_event(Action.EXEC, pid=5, ppid=1, args=("/bin/sh", "-c", 'echo "x"\n\x00')),
    make_event(Action.CONNECT, ip="::1", port=22),
    make_event(Action.RENAME, path="/new", original_path="/old"),
]


def test_ndjson_round_trip_keeps_every_field():
    data = codec.encode_ndjson(EVENTS)
    assert data.count(b"\n") == 3
    events, errors = codec.parse_ndjson_batch(data.split(b"\n"), source="x", first_line=1)
    assert errors == []
    assert events == EVENTS


def test_ndjson_uses_ecs_names():
    line = codec.encode_json(EVENTS[0])
    assert line.startswith(b'{"@timestamp":')
    assert b'"process":{"entity_id":' in line
    assert b'"parent":{"entity_id":' in line
    assert b'"action":"exec"' in line


def test_bad_line_is_reported_with_its_line_and_neighbours_kept():
    lines = codec.encode_ndjson(EVENTS).split(b"\n")[:3]
    lines.insert(1, b'{"@timestamp": "not a number"}')
    lines.insert(2, b"\xff\xfe garbage")
    events, errors = codec.parse_ndjson_batch(lines, source="f.ndjson", first_line=10)
    assert events == EVENTS
    assert [e.location for e in errors] == ["f.ndjson:11", "f.ndjson:12"]


def test_binary_round_trip_and_version_check():
    data = codec.encode_binary(EVENTS)
    assert list(codec.parse_binary(data)) == EVENTS
    with pytest.raises(ParseError, match="version 9"):
        list(codec.parse_binary(b"PAEV\x09\x00"))
    with pytest.raises(ParseError, match="not a ProvArmor"):
        list(codec.parse_binary(b"XXXX\x01\x00"))


def test_binary_truncated_tail_keeps_complete_frames():
    data = codec.encode_binary(EVENTS)
    decoded = []
    with pytest.raises(ParseError, match="truncated"):
        decoded.extend(codec.parse_binary(data[:-5]))
    assert decoded == EVENTS[:2]


def test_binary_fixture_of_format_version_1_still_reads(data_dir):
    data = (data_dir / "codec" / "events-v1.bin").read_bytes()
    events = list(codec.parse_binary(data))
    assert [e.event.action for e in events] == [Action.EXEC, Action.CONNECT, Action.RENAME]


def test_oversized_record_is_rejected():
    with pytest.raises(ParseError, match="exceeds"):
        codec.parse_json_event(b" " * (codec.MAX_RECORD_BYTES + 1), location="x:1")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_only_ever_raises_parse_error(blob):
    with contextlib.suppress(ParseError):
        codec.parse_json_event(blob)
    with contextlib.suppress(ParseError):
        list(codec.parse_binary(blob))
    events, errors = codec.parse_ndjson_batch(blob.split(b"\n"), source="g", first_line=1)
    assert len(events) + len(errors) <= blob.count(b"\n") + 1


@settings(max_examples=100, deadline=None)
@given(
    st.text(max_size=50),
    st.lists(st.text(max_size=20), max_size=5),
    st.integers(0, 2**62),
)
def test_any_strings_round_trip(path, args, ts):
    event = make_event(Action.WRITE, path=path or "/", args=tuple(args), ts=ts)
    assert codec.parse_json_event(codec.encode_json(event)) == event
    assert list(codec.parse_binary(codec.encode_binary([event]))) == [event]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("@timestamp",), 2**63),
        (("@timestamp",), -(2**63) - 1),
        (("process", "pid"), 2**64),
        (("destination", "port"), 2**70),
    ],
)
def test_integer_outside_64_bits_is_a_parse_error_naming_the_field(path, value):
    event = json.loads(codec.encode_json(EVENTS[1]))
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ParseError, match=r"\$\." + re.escape(".".join(path))) as raised:
        codec.parse_json_event(json.dumps(event).encode(), location="batch:7")
    assert raised.value.location == "batch:7"
    events, errors = codec.parse_ndjson_batch(
        [json.dumps(event).encode()], source="f", first_line=1
    )
    assert events == []
    assert len(errors) == 1


def test_host_log_event_round_trips_in_both_encodings_with_ecs_names(data_dir):
    from provarmor.sources.base import HostContext, IngestReport
    from provarmor.sources.hostlog import read_journal

    path = data_dir / "hostlogs" / "journal.json"
    report = IngestReport(source=str(path))
    events = list(read_journal(path, report=report, host=HostContext()))
    assert list(codec.parse_binary(codec.encode_binary(events))) == events
    parsed, errors = codec.parse_ndjson_batch(
        codec.encode_ndjson(events).split(b"\n"), source="x", first_line=1
    )
    assert (parsed, errors) == (events, [])
    login = next(e for e in events if e.message.startswith("Accepted password"))
    record = json.loads(codec.encode_json(login))
    assert record["user"] == {"name": "hlvictim"}
    assert record["source"] == {"ip": "10.99.15.1", "port": 45002}
    assert record["authentication"] == {"method": "password", "service": "sshd"}
    assert record["event"]["action"] == "authenticate"
