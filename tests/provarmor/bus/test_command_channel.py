"""Both ends of the command subjects on a real nats-server: a command published before
its agent ever connected waits in the stream and reaches that agent only; the same
queueing published twice is stored once; a command past its time to live leaves the
stream; an acknowledged command leaves it; a bus that cannot be reached is an error the
caller sees (counted), not a silent loss. On a secured bus (operator mode, the users
``provarmor cluster up`` makes) the manager's user makes the agent's consumer; the agent
binds to it, pulls and acknowledges; another agent's user can neither pull from it nor
acknowledge on it, and no agent may make a consumer (each refused by the server)."""

import asyncio
import time
from typing import Any

import nats
import nats.errors
import pytest

from provarmor.bus.command_channel import CommandInbox, CommandPublisher, NoConsumer
from provarmor.bus.commands import STREAM, CommandMessage, consumer_config, open_message
from provarmor.bus.credentials import Credentials, Trust
from provarmor.bus.publisher import BusUnavailable
from provarmor.bus.signing import SigningKey
from provarmor.bus.stream import connect
from provarmor.testing.nats import free_port, started_secured

AGENT = "00112233445566aa"
OTHER = "ffeeddccbbaa9988"


@pytest.fixture
def publisher(nats_server, tmp_path):
    found = CommandPublisher(nats_server.url, SigningKey.load_or_create(tmp_path / "key"))
    yield found
    found.close()


def message(command_id: str, agent: str = AGENT) -> CommandMessage:
    return CommandMessage(
        agent_id=agent, command_id=command_id, body=b'{"id": "%s"}' % command_id.encode()
    )


def drain(url: str, agent: str, *, ack: bool, wait_s: float = 2.0) -> list[str]:
    """The command ids waiting for ``agent`` (acknowledged when ``ack``)."""

    async def run() -> list[str]:
        inbox = CommandInbox(url, agent, ack_wait_s=30)
        try:
            found = await inbox.fetch(wait_s=wait_s)
            for got in found:
                if ack:
                    await got.ack()
            return [got.headers["Provarmor-Command"] for got in found]
        finally:
            await inbox.close()

    return asyncio.run(run())


def test_a_command_waits_for_its_agent_only_and_is_stored_once(nats_server, publisher):
    publisher.publish(message("act-1"), ttl_s=60, queued=1)
    publisher.publish(message("act-1"), ttl_s=60, queued=1)  # the same queueing again
    publisher.publish(message("act-2", OTHER), ttl_s=60, queued=1)
    assert publisher.published == 3
    assert drain(nats_server.url, AGENT, ack=False) == ["act-1"]
    # not acknowledged: still there for the agent's next connection (after ack_wait)
    assert drain(nats_server.url, OTHER, ack=True) == ["act-2"]
    assert drain(nats_server.url, OTHER, ack=True, wait_s=0.5) == []


def test_what_comes_off_the_bus_verifies_with_the_publishers_key(nats_server, publisher):
    publisher.publish(message("act-3"), ttl_s=60, queued=5)

    async def run():
        inbox = CommandInbox(nats_server.url, AGENT)
        try:
            (got,) = await inbox.fetch(wait_s=2.0)
            await got.ack()
            return got.headers, got.data
        finally:
            await inbox.close()

    headers, data = asyncio.run(run())
    opened = open_message(
        headers, data, agent_id=AGENT, trusted=publisher.key.verify_key, location="bus"
    )
    assert opened.command_id == "act-3"


def stored(url: str) -> int:
    async def run() -> int:
        client = await connect(url, name="test")
        try:
            return int((await client.jetstream().stream_info(STREAM)).state.messages)
        finally:
            await client.close()

    return asyncio.run(run())


def test_a_command_past_its_time_to_live_leaves_the_stream(nats_server, publisher):
    publisher.publish(message("act-short"), ttl_s=1, queued=1)
    publisher.publish(message("act-long"), ttl_s=60, queued=1)
    assert stored(nats_server.url) == 2
    deadline = time.monotonic() + 10
    while stored(nats_server.url) != 1:
        assert time.monotonic() < deadline, "the expired command stayed"
        time.sleep(0.1)
    assert drain(nats_server.url, AGENT, ack=True) == ["act-long"]
    assert stored(nats_server.url) == 0  # acknowledged: gone (work queue)


def test_an_unreachable_bus_is_an_error_and_counted(tmp_path):
    unreachable = CommandPublisher(
        f"nats://127.0.0.1:{free_port()}",
        SigningKey.load_or_create(tmp_path / "key"),
        connect_timeout_s=1.0,
    )
    try:
        with pytest.raises(BusUnavailable):
            unreachable.publish(message("act-1"), ttl_s=60, queued=1)
        assert (unreachable.published, unreachable.failures) == (0, 1)
    finally:
        unreachable.close()


async def _refused(url: str, credentials: Credentials, subject: str, *, request: bool) -> str:
    """What the server says when the user of ``credentials`` publishes (or requests) on
    ``subject``."""
    errors: list[str] = []

    async def on_error(error: Exception) -> None:
        errors.append(str(error))

    client = await nats.connect(url, error_cb=on_error, **credentials.connect_options())
    try:
        if request:
            with pytest.raises(nats.errors.TimeoutError):  # no answer: the server refused
                await client.request(subject, b'{"batch": 1}', timeout=1.0)
        else:
            await client.publish(subject, b"+ACK")
            await client.flush()
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return " ".join(errors)
    finally:
        await client.close()


async def _ack_pending(url: str, service: Credentials, agent: str) -> tuple[int, int]:
    """(delivered and not acknowledged, still in the stream) for ``agent``'s consumer."""
    client = await connect(url, name="test", credentials=service)
    try:
        js = client.jetstream()
        durable = consumer_config(agent).durable_name
        assert durable is not None
        info = await js.consumer_info(STREAM, durable)
        return info.num_ack_pending, int((await js.stream_info(STREAM)).state.messages)
    finally:
        await client.close()


def test_on_a_secured_bus_only_its_agent_pulls_and_acknowledges_a_command(tmp_path):
    trust = Trust.generate()
    bus = started_secured(tmp_path / "bus", trust)
    manager = CommandPublisher(
        bus.url, SigningKey.load_or_create(tmp_path / "key"), credentials=trust.manager()
    )
    signer = trust.signer()
    mine = signer.issue_agent(AGENT, "host-a")
    other = signer.issue_agent(OTHER, "host-b")
    consumer = f"{STREAM}.agent-{AGENT}"

    async def before_enrolment() -> str:
        inbox = CommandInbox(bus.url, AGENT, credentials=mine)
        try:
            with pytest.raises(NoConsumer) as waiting:
                await inbox.fetch(wait_s=0.5)
            return str(waiting.value)
        finally:
            await inbox.close()

    async def session() -> dict[str, Any]:
        inbox = CommandInbox(bus.url, AGENT, credentials=mine)
        try:
            (got,) = await inbox.fetch(wait_s=2.0)
            seen: dict[str, Any] = {"command": got.headers["Provarmor-Command"]}
            seen["other fetches"] = await _refused(
                bus.url, other, f"$JS.API.CONSUMER.MSG.NEXT.{consumer}", request=True
            )
            seen["other acks"] = await _refused(bus.url, other, got.reply, request=False)
            seen["agent makes a consumer"] = await _refused(
                bus.url, mine, f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.mine", request=True
            )
            seen["pending"] = await _ack_pending(bus.url, trust.service("test"), AGENT)
            await got.ack_sync()
            seen["acknowledged"] = await _ack_pending(bus.url, trust.service("test"), AGENT)
            return seen
        finally:
            await inbox.close()

    try:
        assert "the manager makes it" in asyncio.run(before_enrolment())
        manager.prepare(AGENT)  # at enrolment
        manager.publish(message("act-1"), ttl_s=60, queued=1)
        seen = asyncio.run(session())
    finally:
        manager.close()
        bus.stop()
    assert seen["command"] == "act-1"
    violation = "permissions violation for publish to"  # nats-py lowercases the subject
    assert f'{violation} "$js.api.consumer.msg.next.{consumer.lower()}"' in seen["other fetches"]
    assert f'{violation} "$js.ack.{consumer.lower()}.' in seen["other acks"]
    assert violation in seen["agent makes a consumer"]
    assert seen["pending"] == (1, 1)  # the other agent's ack did not count
    assert seen["acknowledged"] == (0, 0)  # the agent's own did: gone (work queue)
