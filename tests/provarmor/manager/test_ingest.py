import contextlib
import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.manager.ingest import BatchTooLarge, event_row, parse_batch
from provarmor.model.codec import parse_json_event
from provarmor.model.errors import ParseError

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


@pytest.fixture(scope="module")
def lines():
    return gzip.decompress(LAB.read_bytes()).splitlines(keepends=True)


def test_parse_batch_keeps_order_and_skips_blank_lines(lines):
    events = parse_batch(lines[0] + b"\n\n" + lines[1], host_id=HOST, max_events=10)
    assert [e.event.id for e in events] == [
        parse_json_event(lines[0]).event.id,
        parse_json_event(lines[1]).event.id,
    ]


def test_parse_batch_names_the_bad_line(lines):
    with pytest.raises(ParseError) as caught:
        parse_batch(lines[0] + b"\n" + b"[1, 2]\n", host_id=HOST, max_events=10)
    assert caught.value.location == "batch:3"


def test_parse_batch_refuses_another_host(lines):
    with pytest.raises(ParseError, match="uploaded by an agent of host 'h2'") as caught:
        parse_batch(lines[0], host_id="h2", max_events=10)
    assert caught.value.location == "batch:1"


def test_parse_batch_counts_events_against_the_limit(lines):
    with pytest.raises(BatchTooLarge):
        parse_batch(b"".join(lines[:4]), host_id=HOST, max_events=3)


def test_event_row_indexes_network_and_file_fields(lines):
    events = [parse_json_event(line) for line in lines]
    connect = next(e for e in events if e.destination is not None and e.destination.ip)
    row = event_row(connect, keep_json=False)
    assert row.remote == f"{connect.destination.ip}:{connect.destination.port}"
    assert row.json == ""
    opened = next(e for e in events if e.file is not None)
    assert event_row(opened, keep_json=True).file_path == opened.file.path


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_only_raises_parse_errors(data):
    with contextlib.suppress(ParseError, BatchTooLarge):
        parse_batch(data, host_id=HOST, max_events=5)
