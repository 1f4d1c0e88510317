import asyncio

import nats.errors
import pytest

from provarmor.bus.message import BatchMessage
from provarmor.bus.stream import STREAM, StreamLayout, connect, ensure_stream
from provarmor.model.errors import ConfigError


async def _partition_hosts(
    url: str, hosts: list[str], partitions: int
) -> dict[int, list[tuple[str, str]]]:
    client = await connect(url, name="test")
    try:
        js = client.jetstream()
        layout = StreamLayout(partitions=partitions)
        await ensure_stream(js, layout)
        for number, host in enumerate(hosts):
            for sequence in (1, 2):
                message = BatchMessage(
                    agent_id=f"a{number}", host_id=host, sequence=sequence, body=b""
                )
                headers, payload = message.encode()
                await js.publish(message.subject, payload, headers=headers)
        found: dict[int, list[str]] = {}
        for partition in range(partitions):
            config = layout.consumer(partition)
            await js.add_consumer(STREAM, config)
            subscription = await js.pull_subscribe_bind(config.durable_name, stream=STREAM)
            messages = []
            while True:  # one message in flight per partition: ack each to get the next
                try:
                    (message,) = await subscription.fetch(1, timeout=0.5)
                except nats.errors.TimeoutError:
                    break
                await message.ack_sync()
                messages.append(message)
            found[partition] = [
                (m.headers["Provarmor-Host"], m.headers["Provarmor-Sequence"]) for m in messages
            ]
        return found
    finally:
        await client.close()


def test_each_host_lands_in_one_partition_in_order(nats_server):
    hosts = [f"host-{number}" for number in range(12)]
    found = asyncio.run(_partition_hosts(nats_server.url, hosts, partitions=3))
    assert sorted(h for partition in found.values() for h, _ in partition) == sorted(hosts * 2)
    for seen in found.values():  # each host's batches in the order they were published
        for host in hosts:
            assert [s for h, s in seen if h == host] in ([], ["1", "2"])
    owners = {host: {p for p, seen in found.items() if (host, "1") in seen} for host in hosts}
    assert all(len(owner) == 1 for owner in owners.values())
    assert sum(1 for seen in found.values() if seen) > 1  # 12 hosts spread over partitions


def test_a_stream_with_another_partition_count_is_refused(nats_server):
    async def check() -> None:
        client = await connect(nats_server.url, name="test")
        try:
            await ensure_stream(client.jetstream(), StreamLayout(partitions=2))
            await ensure_stream(client.jetstream(), StreamLayout(partitions=2))
            with pytest.raises(ConfigError, match=r"has 2 partitions, not 3"):
                await ensure_stream(client.jetstream(), StreamLayout(partitions=3))
        finally:
            await client.close()

    asyncio.run(check())


def test_a_partition_outside_the_layout_is_refused():
    with pytest.raises(ConfigError, match=r"partition 4 is outside 0\.\.3"):
        StreamLayout(partitions=4).consumer(4)
