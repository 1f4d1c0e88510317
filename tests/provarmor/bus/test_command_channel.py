"""Both ends of the command subjects on a real nats-server: a command published before
its agent ever connected waits in the stream and reaches that agent only; the same
queueing published twice is stored once; a command past its time to live leaves the
stream; an acknowledged command leaves it; a bus that cannot be reached is an error the
caller sees (counted), not a silent loss."""

import asyncio
import time

import pytest

from provarmor.bus.command_channel import CommandInbox, CommandPublisher
from provarmor.bus.commands import STREAM, CommandMessage, open_message
from provarmor.bus.publisher import BusUnavailable
from provarmor.bus.signing import SigningKey
from provarmor.bus.stream import connect
from provarmor.testing.nats import free_port

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
