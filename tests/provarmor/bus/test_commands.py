"""The command message format (version 1): one subject per agent; the signature binds the
body to the agent and the command id, so a message changed in any part, signed by another
key or addressed to another agent is refused (:class:`ForgedCommand`); an unknown format
is a :class:`ParseError`; the version 1 fixture still opens."""

import json
from pathlib import Path

import msgspec
import pytest

from provarmor.bus.commands import (
    CommandMessage,
    ForgedCommand,
    agent_token,
    open_message,
    subject_for,
)
from provarmor.bus.signing import SigningKey, VerifyKey
from provarmor.manager.actions import Command
from provarmor.model.errors import ConfigError, ParseError

FIXTURE = Path(__file__).parents[2] / "data" / "bus" / "command-v1.json"
AGENT = "00112233445566aa"


@pytest.fixture
def key(tmp_path) -> SigningKey:
    return SigningKey.load_or_create(tmp_path / "key")


def encoded(key: SigningKey, body: bytes = b'{"id":"act-1"}', agent: str = AGENT):
    message = CommandMessage(agent_id=agent, command_id="act-1", body=body)
    return message.encode(key, ttl_s=30, queued=7)


def test_a_message_round_trips_for_its_agent(key):
    subject, headers, payload = encoded(key)
    assert subject == "provarmor.commands.00112233445566aa" == subject_for(AGENT)
    assert headers["Nats-Msg-Id"] == "act-1:7"
    assert headers["Nats-TTL"] == "30s"
    opened = open_message(headers, payload, agent_id=AGENT, trusted=key.verify_key, location="m")
    assert (opened.agent_id, opened.command_id, opened.body) == (AGENT, "act-1", payload)


def test_the_time_to_live_is_at_least_a_second(key):
    message = CommandMessage(agent_id=AGENT, command_id="act-1", body=b"{}")
    assert message.encode(key, ttl_s=0, queued=1)[1]["Nats-TTL"] == "1s"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, p: (h, p.replace(b"act-1", b"act-2")), "does not verify"),
        (lambda h, p: (h | {"Provarmor-Command": "act-2"}, p), "does not verify"),
        (lambda h, p: (h | {"Provarmor-Agent": "ffffffffffffffff"}, p), "not this one"),
        (lambda h, p: ({k: v for k, v in h.items() if k != "Provarmor-Signature"}, p), "missing"),
        (lambda h, p: (h | {"Provarmor-Signature": "%%%"}, p), "not base64"),
        (lambda h, p: (h | {"Provarmor-Key": "0000000000000000"}, p), "not the manager's"),
    ],
)
def test_a_changed_message_is_refused(key, change, reason):
    _, headers, payload = encoded(key)
    headers, payload = change(headers, payload)
    with pytest.raises(ForgedCommand) as caught:
        open_message(headers, payload, agent_id=AGENT, trusted=key.verify_key, location="s #3")
    assert reason in caught.value.message
    assert caught.value.location == "s #3"


def test_another_key_and_another_agents_command_are_refused(key, tmp_path):
    intruder = SigningKey.load_or_create(tmp_path / "intruder")
    _, headers, payload = encoded(intruder)
    headers["Provarmor-Key"] = key.verify_key.id  # claiming the manager's key does not help
    with pytest.raises(ForgedCommand):
        open_message(headers, payload, agent_id=AGENT, trusted=key.verify_key, location="m")
    _, headers, payload = encoded(key, agent="ffffffffffffffff")  # genuine, for another agent
    headers["Provarmor-Agent"] = AGENT
    with pytest.raises(ForgedCommand):
        open_message(headers, payload, agent_id=AGENT, trusted=key.verify_key, location="m")


def test_an_unknown_format_is_a_parse_error_not_a_forgery(key):
    _, headers, payload = encoded(key)
    for version in ("2", None):
        changed = headers | {"Provarmor-Format": version} if version else {}
        with pytest.raises(ParseError) as caught:
            open_message(changed, payload, agent_id=AGENT, trusted=key.verify_key, location="m")
        assert not isinstance(caught.value, ForgedCommand)
        assert "Provarmor-Format" in caught.value.message


def test_agent_ids_that_cannot_name_a_subject_are_refused():
    assert agent_token("0011aabb") == "0011aabb"
    for bad in ("a.b", "a*", "a>", "", "a b"):
        with pytest.raises(ConfigError):
            subject_for(bad)


def test_the_version_1_fixture_opens_and_holds_a_command():
    data = json.loads(FIXTURE.read_text())
    trusted = VerifyKey.from_text(data["public_key"], location=str(FIXTURE))
    agent = data["headers"]["Provarmor-Agent"]
    assert data["subject"] == subject_for(agent)
    opened = open_message(
        data["headers"], data["payload"].encode(), agent_id=agent, trusted=trusted, location="f"
    )
    command = msgspec.json.decode(opened.body, type=Command)
    assert command.id == opened.command_id == "act-0123456789abcdef"
    assert command.request.kind.value == "quarantine"
    assert command.request.target.path == "/tmp/.x/implant"
