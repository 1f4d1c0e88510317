"""The manager's sender of bus commands (real nats-server; findings store on SQLite and
PostgreSQL): the command goes to the host's agent seen last, signed, with a time to live of
its expiry; a host without an agent is said so."""

import asyncio
import time

import msgspec
import pytest

from provarmor.bus.command_channel import CommandInbox, CommandPublisher
from provarmor.bus.commands import open_message
from provarmor.bus.signing import SigningKey
from provarmor.manager.actions import ActionRecord, ActionState, Command, CommandKind
from provarmor.manager.auth import Role, issue_token
from provarmor.manager.bus_commands import CommandSender, NoAgent
from provarmor.manager.store import AgentRecord, TokenRecord
from provarmor.response.records import ActionKind, ActionRequest, FileTarget
from provarmor.testing.nats import started

HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


@pytest.fixture
def bus(tmp_path):
    server = started(tmp_path / "nats")
    yield server
    server.stop()


def enrolled(store, agent_id: str, *, enrolled_ns: int, seen_ns: int) -> None:
    issued = issue_token()
    credential = TokenRecord(
        id=agent_id, role=Role.AGENT, salt=issued.salt, digest=issued.digest, created_ns=1
    )
    store.add_agent(
        AgentRecord(id=agent_id, host_id=HOST, hostname="vm", enrolled_ns=enrolled_ns),
        credential=credential,
    )
    store.record_status(agent_id, status_json="{}", now_ns=seen_ns)


def queued(now: int) -> ActionRecord:
    request = ActionRequest(
        id="act-1", kind=ActionKind.QUARANTINE, target=FileTarget(path="/tmp/x"), requested_by="t"
    )
    return ActionRecord(
        id="act-1",
        host=HOST,
        incident_id="",
        kind=ActionKind.QUARANTINE,
        request_json=msgspec.json.encode(request).decode(),
        state=ActionState.QUEUED,
        needs_approval=False,
        proposed_by="t",
        created_ns=now,
        updated_ns=now,
        expires_ns=now + 90 * 1_000_000_000,
    )


def test_the_command_goes_signed_to_the_agent_seen_last(tmp_path, bus, store):
    key = SigningKey.load_or_create(tmp_path / "key")
    sender = CommandSender(CommandPublisher(bus.url, key))
    try:
        now = time.time_ns()
        with pytest.raises(NoAgent):
            sender.send(store, queued(now), now_ns=now)
        enrolled(store, "aaaaaaaaaaaaaaaa", enrolled_ns=1, seen_ns=now)  # older, but alive
        enrolled(store, "bbbbbbbbbbbbbbbb", enrolled_ns=2, seen_ns=now - 10**12)
        assert sender.send(store, queued(now), now_ns=now) == "aaaaaaaaaaaaaaaa"

        async def take():
            inbox = CommandInbox(bus.url, "aaaaaaaaaaaaaaaa")
            try:
                (message,) = await inbox.fetch(wait_s=3.0)
                await message.ack()
                return message.headers, message.data
            finally:
                await inbox.close()

        headers, data = asyncio.run(take())
        assert headers["Nats-TTL"] == "90s"
        opened = open_message(
            headers, data, agent_id="aaaaaaaaaaaaaaaa", trusted=key.verify_key, location="bus"
        )
        command = msgspec.json.decode(opened.body, type=Command)
        assert (command.id, command.command) == ("act-1", CommandKind.RUN)
        assert command.request.target == FileTarget(path="/tmp/x")
    finally:
        sender.close()
