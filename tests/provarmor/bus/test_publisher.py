import asyncio
import gzip
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from provarmor.agent.spool import SpoolPosition
from provarmor.bus.message import batch_message, decode_message
from provarmor.bus.publisher import BusPublisher, BusSink, BusUnavailable
from provarmor.bus.stream import STREAM, connect
from provarmor.model.codec import parse_json_event

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


@pytest.fixture(scope="module")
def events():
    return [parse_json_event(line) for line in gzip.decompress(LAB.read_bytes()).splitlines()[:40]]


def stored(url: str) -> int:
    async def count() -> int:
        client = await connect(url, name="test")
        try:
            info = await client.jetstream().stream_info(STREAM)
            return int(info.state.messages)
        finally:
            await client.close()

    return asyncio.run(count())


def stored_messages(url: str) -> list:
    async def read() -> list:
        client = await connect(url, name="test")
        try:
            js = client.jetstream()
            count = int((await js.stream_info(STREAM)).state.messages)
            raw = [await js.get_msg(STREAM, seq=seq) for seq in range(1, count + 1)]
            return [decode_message(m.headers, m.data, location=str(m.seq)) for m in raw]
        finally:
            await client.close()

    return asyncio.run(read())


def _sink(publisher: BusPublisher, state_file: Path) -> BusSink:
    """Agent a1's sink of HOST, its committed position kept in ``state_file``."""
    return BusSink(
        publisher,
        agent_id="a1",
        host_id=HOST,
        state_file=state_file,
        make_position=lambda sequence: SpoolPosition(sequence=sequence),
    )


def test_the_sink_says_which_of_its_batches_each_batch_follows(nats_server, events, tmp_path):
    sink = _sink(BusPublisher(nats_server.url), tmp_path / "bus.json")
    try:
        sink.write(events[:10], SpoolPosition(sequence=10))
        sink.write(events[10:25], SpoolPosition(sequence=25))
    finally:
        sink.close()
    found = [(m.after, m.sequence) for m in stored_messages(nats_server.url)]
    assert found == [(0, 10), (10, 25)]


def test_a_window_of_batches_is_stored_once_even_when_sent_again(nats_server, events):
    publisher = BusPublisher(nats_server.url, window=4)
    try:
        messages = [
            batch_message(events[i : i + 4], agent_id="a1", host_id=HOST, sequence=i + 4)
            for i in range(0, 40, 4)
        ]
        assert publisher.publish(messages) == 10
        assert publisher.publish(messages[3:6]) == 3
    finally:
        publisher.close()
    assert (publisher.published, publisher.duplicates, publisher.failures) == (10, 3, 0)
    assert stored(nats_server.url) == 10


def test_sink_commits_only_acknowledged_batches_and_waits_out_a_broker_restart(
    nats_server, events, tmp_path
):
    publisher = BusPublisher(nats_server.url, ack_timeout_s=1.0)
    sink = _sink(publisher, tmp_path / "bus.json")
    try:
        sink.write(events[:10], SpoolPosition(sequence=10))
        assert sink.committed() == SpoolPosition(sequence=10)
        nats_server.stop()
        with pytest.raises(BusUnavailable):
            sink.write(events[10:20], SpoolPosition(sequence=20))
        assert publisher.failures == 1
        assert sink.committed() == SpoolPosition(sequence=10)  # not acked: not committed
        late = BusPublisher(nats_server.url, connect_timeout_s=1)  # an agent started now
        with pytest.raises(BusUnavailable):
            late.publish([batch_message(events[:5], agent_id="a2", host_id=HOST, sequence=5)])
        nats_server.start()
        deadline = 20
        while True:  # the client reconnects by itself; the caller sends the batch again
            try:
                sink.write(events[10:20], SpoolPosition(sequence=20))
                break
            except BusUnavailable:
                deadline -= 1
                assert deadline, "the publisher did not reconnect"
        assert sink.committed() == SpoolPosition(sequence=20)
        sink.write(events[:10], SpoolPosition(sequence=10))  # already committed: not sent
        assert late.publish([batch_message(events[:5], agent_id="a2", host_id=HOST, sequence=5)])
        late.close()
    finally:
        sink.close()
    assert stored(nats_server.url) == 3
    reopened = _sink(BusPublisher(nats_server.url), tmp_path / "bus.json")
    try:
        assert reopened.committed() == SpoolPosition(sequence=20)
    finally:
        reopened.close()


def test_many_agents_publish_side_by_side_each_in_order(nats_server, events):
    publisher = BusPublisher(nats_server.url, window=4)
    try:
        messages = [
            batch_message(
                events[i : i + 4], agent_id=agent, host_id=f"host-{agent}", sequence=i + 4
            )
            for i in range(0, 40, 4)
            for agent in ("a1", "a2", "a3")
        ]
        assert publisher.publish(messages) == 30
    finally:
        publisher.close()

    async def stream_order() -> list[tuple[str, int]]:
        client = await connect(nats_server.url, name="test")
        try:
            js = client.jetstream()
            found = []
            for sequence in range(1, 31):
                stored_message = await js.get_msg(STREAM, sequence)
                headers = stored_message.headers or {}
                found.append((headers["Provarmor-Agent"], int(headers["Provarmor-Sequence"])))
            return found
        finally:
            await client.close()

    order = asyncio.run(stream_order())
    for agent in ("a1", "a2", "a3"):
        assert [s for a, s in order if a == agent] == list(range(4, 44, 4))


def test_threads_publishing_at_once_share_one_connection(nats_server, events):
    """The first publishes of many threads (a fleet of simulated agents) make one connection;
    connections made beside it were never closed and their tasks outlived the loop."""
    publisher = BusPublisher(nats_server.url, window=64)
    barrier = threading.Barrier(8)

    def agent(number: int) -> int:
        barrier.wait()
        message = batch_message(events[:4], agent_id=f"t{number}", host_id=HOST, sequence=4)
        return publisher.publish([message])

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(agent, range(8))) == 8
    loop = publisher._loop
    publisher.close()
    assert [task for task in asyncio.all_tasks(loop) if not task.done()] == []
