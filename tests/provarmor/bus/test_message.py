import gzip
import json
from pathlib import Path

import pytest

from provarmor.bus.message import (
    GZIP_ABOVE_BYTES,
    BatchMessage,
    batch_message,
    decode_message,
    subject_for,
)
from provarmor.manager.ingest import parse_batch
from provarmor.model.errors import ParseError

DATA = Path(__file__).parents[2] / "data"
HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def test_version_1_fixture_decodes_to_the_events_it_holds():
    fixture = json.loads((DATA / "bus" / "batch-v1.json").read_text())
    message = decode_message(fixture["headers"], fixture["payload"].encode(), location="fixture")
    assert (message.agent_id, message.host_id, message.sequence) == ("agent-1", HOST, 2)
    assert message.after is None, "an agent that does not say which batch it follows"
    assert message.msg_id == fixture["headers"]["Nats-Msg-Id"]
    assert message.subject == fixture["subject"]
    events = parse_batch(message.body, host_id=HOST, max_events=10)
    assert len(events) == 2


def test_large_batches_are_compressed_and_decode_the_same():
    lines = gzip.decompress((DATA / "lab/nodlink-ubuntu-seed1/events.ndjson.gz").read_bytes())
    body = b"".join(lines.splitlines(keepends=True)[:50])
    assert len(body) > GZIP_ABOVE_BYTES
    message = BatchMessage(agent_id="a", host_id=HOST, sequence=50, body=body)
    headers, payload = message.encode()
    assert headers["Content-Encoding"] == "gzip"
    assert len(payload) < len(body)
    assert decode_message(headers, payload, location="x") == message


def test_batch_message_encodes_events_and_keys_them_by_agent_and_sequence():
    fixture = json.loads((DATA / "bus" / "batch-v1.json").read_text())
    events = parse_batch(fixture["payload"].encode(), host_id=HOST, max_events=10)
    message = batch_message(events, agent_id="agent-1", host_id=HOST, sequence=2)
    assert message.headers() == fixture["headers"]
    assert parse_batch(message.body, host_id=HOST, max_events=10) == events


def test_a_batch_says_which_batch_of_its_agent_it_follows():
    message = BatchMessage(agent_id="a", host_id=HOST, sequence=50, body=b"{}\n", after=25)
    headers, payload = message.encode()
    assert headers["Provarmor-After"] == "25"
    assert decode_message(headers, payload, location="x") == message


def test_subject_token_is_one_safe_token_per_host():
    subject = subject_for("web 01.example.com/*>")
    assert subject.count(".") == 2
    assert not {" ", "*", ">"} & set(subject)
    assert subject_for("a") != subject_for("b")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Provarmor-Format": "2"}, "message format '2' is not 1"),
        ({"Provarmor-Format": None}, "message format None is not 1"),
        ({"Provarmor-Agent": None}, "header Provarmor-Agent is missing"),
        ({"Provarmor-Sequence": "x"}, "header Provarmor-Sequence is not a number"),
        ({"Provarmor-After": "y"}, "header Provarmor-After is not a number"),
        ({"Provarmor-After": "2"}, "header Provarmor-After 2 is not below the batch's sequence 2"),
        ({"Content-Encoding": "br"}, "unknown Content-Encoding 'br'"),
        ({"Content-Encoding": "gzip"}, "body is not gzip"),
    ],
)
def test_bad_messages_name_the_header_and_the_location(change, message):
    headers = json.loads((DATA / "bus" / "batch-v1.json").read_text())["headers"]
    for key, value in change.items():
        if value is None:
            headers.pop(key)
        else:
            headers[key] = value
    with pytest.raises(ParseError, match=message) as caught:
        decode_message(headers, b"{}", location="provarmor.partition.0.h1#7")
    assert caught.value.location == "provarmor.partition.0.h1#7"
