import asyncio
import contextlib
import gzip
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provarmor.agent.delivery import Delivery
from provarmor.agent.spool import Spool, SpoolPosition
from provarmor.bus.publisher import BusPublisher, BusSink
from provarmor.bus.stream import STREAM, StreamLayout, connect
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.store import AgentRecord, EventQuery, Page, TokenRecord
from provarmor.model.actions import Action
from provarmor.model.codec import parse_json_event
from provarmor.model.errors import StorageError
from provarmor.model.event import Event
from provarmor.testing.factories import make_event
from provarmor.testing.nats import started

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
AGENT = "agent-bus-1"
PROVARMOR = Path(sys.executable).parent / "provarmor"


def events(first, count):
    return [
        make_event(Action.WRITE, ts=n, event_id=f"e{n}", path="/tmp/x")
        for n in range(first, first + count)
    ]


class Receiver:
    """A sink that keeps batches as the manager and the workers do: a batch whose end
    sequence is not beyond the acknowledged one is a re-delivery and adds nothing. With
    ``lose_answers``, that many writes are stored but answered with an error (the answer
    or JetStream's acknowledgement was lost on the way back)."""

    name = "receiver"

    def __init__(self, *, lose_answers=0):
        self.acked = 0
        self.stored: list[str] = []
        self.lose_answers = lose_answers

    def committed(self):
        return SpoolPosition(sequence=self.acked) if self.acked else None

    def write(self, batch: list[Event], position: SpoolPosition) -> None:
        if position.sequence > self.acked:
            self.stored += [e.event.id for e in batch]
            self.acked = position.sequence
        if self.lose_answers:
            self.lose_answers -= 1
            raise StorageError("no acknowledgement", location="receiver")

    def close(self):
        pass


def test_a_batch_whose_answer_was_lost_is_sent_again_with_the_same_bounds(tmp_path):
    receiver = Receiver(lose_answers=1)
    with Spool(tmp_path / "spool", max_bytes=1 << 20, fsync=False, consumers=["receiver"]) as spool:
        delivery = Delivery(spool, receiver, batch_events=100)
        spool.append(events(0, 10))
        delivery.run()  # stored, but the sink said it failed
        assert (delivery.errors, delivery.delivered, spool.held("receiver")) == (1, 0, 10)
        spool.append(events(10, 5))  # more arrives before the retry
        delivery.run()
        assert receiver.stored == [f"e{n}" for n in range(15)]  # each once
        assert (delivery.delivered, spool.held("receiver")) == (15, None)
        assert spool.read("receiver", 100).events == []


def test_a_failed_write_that_was_not_stored_is_retried_then_the_rest_follows(tmp_path):
    receiver = Receiver()
    with Spool(tmp_path / "spool", max_bytes=1 << 20, fsync=False, consumers=["receiver"]) as spool:
        delivery = Delivery(spool, receiver, batch_events=4)
        spool.append(events(0, 10))
        delivery.run()
        assert receiver.stored == [f"e{n}" for n in range(10)]
        assert receiver.acked == 10
        assert delivery.errors == 0


class AckSwallowingProxy:
    """A TCP proxy in front of nats-server. Once ``swallow`` is set, what the server sends
    is dropped: the agent's publishes still reach JetStream and are stored, but their
    acknowledgements never come back."""

    def __init__(self, port: int) -> None:
        self.port_to = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"nats://127.0.0.1:{self.listener.getsockname()[1]}"
        self.swallow = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                agent, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.port_to))
            self.sockets += [agent, server]
            threading.Thread(target=self._pump, args=(agent, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, agent, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_server: bool) -> None:
        while data := self._receive(source):
            if from_server and self.swallow.is_set():
                continue
            try:
                target.sendall(data)
            except OSError:
                return

    @staticmethod
    def _receive(source: socket.socket) -> bytes:
        try:
            return source.recv(65536)
        except OSError:
            return b""

    def close(self) -> None:
        """Cut every connection, as the agent's crash would."""
        for sock in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def stream_messages(url: str) -> int:
    async def count() -> int:
        client = await connect(url, name="test")
        try:
            return int((await client.jetstream().stream_info(STREAM)).state.messages)
        finally:
            await client.close()

    return asyncio.run(count())


def bus_agent(url: str, state_dir: Path) -> tuple[Spool, BusSink[SpoolPosition]]:
    """The agent's spool and bus sink as `provarmor agent --bus` opens them."""
    sink = BusSink(
        BusPublisher(url, layout=StreamLayout(partitions=1), ack_timeout_s=1.0),
        agent_id=AGENT,
        host_id=HOST,
        state_file=state_dir / "bus.json",
        make_position=lambda sequence: SpoolPosition(sequence=sequence),
    )
    spool = Spool(state_dir / "spool", max_bytes=1 << 24, fsync=False, consumers=[sink.name])
    committed = sink.committed()
    if committed is not None:
        spool.ack(sink.name, committed)
    return spool, sink


@pytest.mark.slow
def test_an_agent_restarted_after_a_lost_bus_ack_stores_every_event_once(tmp_path):
    lab = [parse_json_event(line) for line in gzip.decompress(LAB.read_bytes()).splitlines()]
    sent = lab[:120]
    nats_server = started(tmp_path / "nats")
    database = f"sqlite:///{tmp_path / 'manager.db'}"
    store = open_findings_store(database)
    now = time.time_ns()
    store.add_agent(
        AgentRecord(id=AGENT, host_id=HOST, hostname="lab", enrolled_ns=now),
        credential=TokenRecord(id=AGENT, role=Role.AGENT, salt="s", digest="d", created_ns=now),
    )
    proxy = AckSwallowingProxy(nats_server.port)
    worker_log = tmp_path / "worker.log"
    with worker_log.open("ab") as log:
        worker = subprocess.Popen(
            [
                *(str(PROVARMOR), "worker", "--bus", nats_server.url, "--db", database),
                *("--state-dir", str(tmp_path / "w"), "--partitions", "1", "--partition", "0"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        spool, sink = bus_agent(proxy.url, tmp_path / "agent")
        delivery = Delivery(spool, sink, batch_events=100)
        spool.append(sent[:40])
        delivery.run()
        proxy.swallow.set()
        spool.append(sent[40:80])
        delivery.run()  # JetStream stores the batch; its acknowledgement is lost
        assert (delivery.delivered, delivery.errors) == (40, 1)
        assert stream_messages(nats_server.url) == 2
        proxy.close()  # the agent is killed before it retries
        sink.close()
        spool.close()

        spool, sink = bus_agent(nats_server.url, tmp_path / "agent")
        spool.append(sent[80:])  # more arrives before the retry
        restarted = Delivery(spool, sink, batch_events=100)
        restarted.run()
        spool.close()
        sink.close()
        assert restarted.delivered == 80
        end = time.monotonic() + 120
        while (agent := store.agent(AGENT)) is None or agent.acked_sequence < len(sent):
            assert worker.poll() is None, worker_log.read_text()
            assert time.monotonic() < end, worker_log.read_text()
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        nats_server.stop()
    rows = store.search_events(EventQuery(host=HOST, page=Page(limit=len(sent) * 2)))
    assert sorted(row.event_id for row in rows) == sorted(e.event.id for e in sent)
    store.close()
