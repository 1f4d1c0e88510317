"""``provarmor worker`` as a real process over a real nats-server and a real findings store:
what is published is stored once, through re-sends, a kill -9 of the worker and a broker
restart."""

import asyncio
import gzip
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from msgspec.structs import replace
from prometheus_client.parser import text_string_to_metric_families

from provarmor.bus.leases import assignment, open_leases, owners
from provarmor.bus.message import MSG_ID, BatchMessage, batch_message
from provarmor.bus.publisher import BusPublisher, BusUnavailable
from provarmor.bus.stream import STREAM, StreamLayout, connect, ensure_stream
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.sql_store import SqlFindingsStore
from provarmor.manager.store import (
    AgentRecord,
    AlertQuery,
    EventQuery,
    IncidentQuery,
    Page,
    TokenRecord,
)
from provarmor.model.codec import parse_json_event
from provarmor.testing.nats import NatsServer, started

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
AGENT = "agent-bus-1"
BATCH = 40
PROVARMOR = Path(sys.executable).parent / "provarmor"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def events():
    return [parse_json_event(line) for line in gzip.decompress(LAB.read_bytes()).splitlines()]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = started(tmp_path / "nats")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path: Path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_database")
    return f"sqlite:///{tmp_path / 'manager.db'}"


def enrolled_store(url: str) -> SqlFindingsStore:
    store = open_findings_store(url)
    now = time.time_ns()
    store.add_agent(
        AgentRecord(id=AGENT, host_id=HOST, hostname="lab", enrolled_ns=now),
        credential=TokenRecord(id=AGENT, role=Role.AGENT, salt="s", digest="d", created_ns=now),
    )
    return store


class Worker:
    def __init__(
        self, *, bus: str, db: str, state_dir: Path, claim: int = 0, extra: Sequence[str] = ()
    ) -> None:
        """One worker of partition 0 of 1, or with ``claim`` one claiming among that many;
        ``extra``: more options."""
        where = ["--partitions", "1", "--partition", "0", *extra]
        if claim:
            where = ["--partitions", str(claim), "--claim", "--lease-ttl", "2"]
        self.log = state_dir / "worker.log"
        state_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(PROVARMOR),
                    "worker",
                    "--bus",
                    bus,
                    "--db",
                    db,
                    "--state-dir",
                    str(state_dir),
                    *where,
                    "--ack-wait",
                    "2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        assert self.process.returncode in (0, -signal.SIGKILL), self.log.read_text()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def batches(events, *, agent_id: str = AGENT, host_id: str = HOST) -> list[BatchMessage]:
    """The events as the agent's batches of BATCH (sequence: the number after the batch;
    after: the batch before's)."""
    return [
        batch_message(
            events[i : i + BATCH],
            agent_id=agent_id,
            host_id=host_id,
            sequence=min(i + BATCH, len(events)),
            after=i,
        )
        for i in range(0, len(events), BATCH)
    ]


def publish_all(url: str, events, *, sequences=None, partitions: int = 1) -> list[int]:
    """Publish the events' batches (those of ``sequences`` only); returns their sequences."""
    messages = batches(events)
    if sequences is not None:
        messages = [m for m in messages if m.sequence in sequences]
    publisher = BusPublisher(url, layout=StreamLayout(partitions=partitions), window=8)
    try:
        assert publisher.publish(messages) == len(messages)
    finally:
        publisher.close()
    return [m.sequence for m in messages]


def wait_for_acked(store, sequence: int, *, worker: Worker, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        agent = store.agent(AGENT)
        if agent is not None and agent.acked_sequence >= sequence:
            return
        assert worker.process.poll() is None, worker.log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"batch {sequence} not stored in {deadline_s}s: {worker.log.read_text()}")


async def publish_raw(url: str, message: BatchMessage, *, msg_id: str) -> None:
    client = await connect(url, name="test")
    try:
        await ensure_stream(client.jetstream(), StreamLayout(partitions=1))
        headers, payload = message.encode()
        ack = await client.jetstream().publish(
            message.subject, payload, headers={**headers, MSG_ID: msg_id}
        )
        assert not ack.duplicate
    finally:
        await client.close()


def wait_until_drained(url: str, *, worker: Worker, deadline_s: float = 60) -> None:
    """Until the partition's consumer has every message delivered and acknowledged."""

    async def pending() -> int:
        client = await connect(url, name="test")
        try:
            info = await client.jetstream().consumer_info(STREAM, "worker-p0")
            return int(info.num_pending) + int(info.num_ack_pending)
        finally:
            await client.close()

    end = time.monotonic() + deadline_s
    while asyncio.run(pending()):
        assert time.monotonic() < end, worker.log.read_text()
        time.sleep(0.05)


def assert_stored_once(store, events) -> None:
    rows = store.search_events(EventQuery(host=HOST, page=Page(limit=len(events) * 2)))
    assert sorted(row.event_id for row in rows) == sorted(e.event.id for e in events)
    alerts = store.alerts(AlertQuery(host=HOST, page=Page(limit=100_000)))
    assert alerts, "the lab recording raises alerts"
    assert len({a.id for a in alerts}) == len(alerts)


def test_published_batches_are_analysed_and_stored_once(nats_server, database, tmp_path, events):
    store = enrolled_store(database)
    worker = Worker(bus=nats_server.url, db=database, state_dir=tmp_path / "w")
    try:
        sequences = publish_all(nats_server.url, events)
        sequences += publish_all(nats_server.url, events, sequences=set(sequences[2:5]))
        wait_for_acked(store, len(events), worker=worker)
        first = store.alerts(AlertQuery(host=HOST, page=Page(limit=100_000)))
        # a batch sent again after JetStream's duplicate window: only the store's sequence
        # knows it (its Nats-Msg-Id is changed to get past the window here)
        late = batch_message(events[:BATCH], agent_id=AGENT, host_id=HOST, sequence=BATCH)
        asyncio.run(publish_raw(nats_server.url, late, msg_id=f"{late.msg_id}-late"))
        wait_until_drained(nats_server.url, worker=worker)
    finally:
        worker.stop()
    assert_stored_once(store, events)
    assert len(store.alerts(AlertQuery(host=HOST, page=Page(limit=100_000)))) == len(first)
    store.close()


FETCH_4 = ("--fetch", "4")
"""Fetches of 4 batches: the kill comes while a fetch is analysed, stored or acknowledged."""


HOST_B = "5e7b0c1a9d2f4e6b8a3c1d0f2e4b6a8c"
AGENT_B = "agent-bus-2"


def test_fetches_mixing_two_hosts_store_each_host_as_alone(nats_server, database, tmp_path, events):
    """Two hosts' batches interleaved on one partition: the worker's fetches hold both, each
    host's batches are analysed in order and every fetch is stored in one transaction; each
    host ends with every event once and the same alerts as the other."""
    store = enrolled_store(database)
    now = time.time_ns()
    store.add_agent(
        AgentRecord(id=AGENT_B, host_id=HOST_B, hostname="lab-b", enrolled_ns=now),
        credential=TokenRecord(id=AGENT_B, role=Role.AGENT, salt="s", digest="d", created_ns=now),
    )
    other = [replace(e, host=replace(e.host, id=HOST_B)) for e in events]
    mixed = [
        message
        for pair in zip(
            batches(events),
            batches(other, agent_id=AGENT_B, host_id=HOST_B),
            strict=True,
        )
        for message in pair
    ]
    publisher = BusPublisher(nats_server.url, layout=StreamLayout(partitions=1), window=8)
    try:
        assert publisher.publish(mixed) == len(mixed)
    finally:
        publisher.close()
    worker = Worker(bus=nats_server.url, db=database, state_dir=tmp_path / "w", extra=FETCH_7)
    try:
        wait_for_acked(store, len(events), worker=worker)
        end = time.monotonic() + 120
        while store.agent(AGENT_B).acked_sequence < len(events):
            assert time.monotonic() < end, worker.log.read_text()
            time.sleep(0.05)
    finally:
        worker.stop()
    assert_stored_once(store, events)
    rows = store.search_events(EventQuery(host=HOST_B, page=Page(limit=len(events) * 2)))
    assert sorted(row.event_id for row in rows) == sorted(e.event.id for e in events)
    alerts = {
        host: sorted(a.id for a in store.alerts(AlertQuery(host=host, page=Page(limit=100_000))))
        for host in (HOST, HOST_B)
    }
    assert alerts[HOST] == alerts[HOST_B]
    store.close()


FETCH_7 = ("--fetch", "7")
"""Fetches of 7 batches: two hosts' runs split differently from fetch to fetch."""


def test_a_killed_worker_restarted_loses_and_duplicates_nothing(
    nats_server, database, tmp_path, events
):
    store = enrolled_store(database)
    worker = Worker(bus=nats_server.url, db=database, state_dir=tmp_path / "w", extra=FETCH_4)
    sequences = publish_all(nats_server.url, events)
    wait_for_acked(store, sequences[1], worker=worker)
    worker.kill()
    at_kill = store.agent(AGENT).acked_sequence
    assert at_kill < sequences[-1], "the worker finished before it was killed"
    worker = Worker(bus=nats_server.url, db=database, state_dir=tmp_path / "w", extra=FETCH_4)
    try:
        wait_for_acked(store, sequences[-1], worker=worker)
    finally:
        worker.stop()
    assert_stored_once(store, events)
    store.close()


def test_a_broker_restart_delays_but_loses_nothing(nats_server, tmp_path, events):
    database = f"sqlite:///{tmp_path / 'manager.db'}"
    store = enrolled_store(database)
    worker = Worker(bus=nats_server.url, db=database, state_dir=tmp_path / "w")
    half = len(events) // 2 // BATCH * BATCH
    try:
        publish_all(nats_server.url, events[:half])
        nats_server.stop()
        down = BusPublisher(nats_server.url, connect_timeout_s=1)
        try:
            with pytest.raises(BusUnavailable):
                down.publish(batches(events)[half // BATCH :])
        finally:
            down.close()
        nats_server.start()
        sequences = publish_all(nats_server.url, events)  # the agent sends what was not acked
        wait_for_acked(store, sequences[-1], worker=worker)
    finally:
        worker.stop()
    assert_stored_once(store, events)
    store.close()


def test_a_batch_that_can_never_be_stored_is_rejected_and_the_rest_goes_on(
    nats_server, tmp_path, events
):
    database = f"sqlite:///{tmp_path / 'manager.db'}"
    store = enrolled_store(database)
    stranger = batch_message(events[:BATCH], agent_id="not-enrolled", host_id=HOST, sequence=BATCH)
    asyncio.run(publish_raw(nats_server.url, stranger, msg_id=stranger.msg_id))
    bad = BatchMessage(agent_id=AGENT, host_id=HOST, sequence=1, body=b"{not json\n")
    asyncio.run(publish_raw(nats_server.url, bad, msg_id=bad.msg_id))
    worker = Worker(bus=nats_server.url, db=database, state_dir=tmp_path / "w")
    try:
        sequences = publish_all(nats_server.url, events)
        wait_for_acked(store, sequences[-1], worker=worker)
    finally:
        worker.stop()
    assert_stored_once(store, events)
    log = worker.log.read_text()
    assert "agent 'not-enrolled' is not enrolled for host" in log
    assert "rejected=2" in log
    store.close()


def lease_owners(url: str) -> dict[int, str]:
    async def read() -> dict[int, str]:
        client = await connect(url, name="test")
        try:
            return await owners(await open_leases(client.jetstream(), ttl_s=2))
        finally:
            await client.close()

    return asyncio.run(read())


def wait_for_owners(url: str, check, *, workers: list[Worker], deadline_s: float = 60) -> dict:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = lease_owners(url)
        if check(found):
            return found
        for worker in workers:
            assert worker.process.poll() is None, worker.log.read_text()
        time.sleep(0.2)
    raise AssertionError(f"leases {lease_owners(url)} not as expected in {deadline_s}s")


def test_claiming_workers_rebalance_when_one_joins_and_take_over_a_killed_ones_partitions(
    nats_server, tmp_path, events
):
    database = f"sqlite:///{tmp_path / 'manager.db'}"
    store = enrolled_store(database)
    url = nats_server.url
    sequences = [message.sequence for message in batches(events)]
    thirds = len(sequences) // 3
    first = Worker(bus=url, db=database, state_dir=tmp_path / "a", claim=16)
    second = None
    try:
        alone = wait_for_owners(
            url, lambda o: len(o) == 16 and len(set(o.values())) == 1, workers=[first]
        )
        publish_all(url, events, sequences=set(sequences[:thirds]), partitions=16)
        second = Worker(bus=url, db=database, state_dir=tmp_path / "b", claim=16)
        shared = wait_for_owners(
            url,
            lambda o: (
                len(o) == 16 and len(set(o.values())) == 2 and o == assignment(16, set(o.values()))
            ),
            workers=[first, second],
        )
        (name,) = set(alone.values())
        assert 0 < sum(owner != name for owner in shared.values()) < 16  # the newcomer's share
        publish_all(url, events, sequences=set(sequences[thirds : 2 * thirds]), partitions=16)
        second.kill()
        wait_for_owners(url, lambda o: o == dict.fromkeys(range(16), name), workers=[first])
        publish_all(url, events, sequences=set(sequences[2 * thirds :]), partitions=16)
        wait_for_acked(store, sequences[-1], worker=first)
    finally:
        first.stop()
        if second is not None and second.process.poll() is None:
            second.stop()
    assert_stored_once(store, events)
    assert "handed back" in first.log.read_text()  # its share went to the newcomer


def _incidents(store) -> tuple[list[tuple[str, int, int, str]], set[str]]:
    """Each incident as ``(engine id, version, alerts, story JSON)`` with its manager tag
    written ``TAG``, and the tags seen (one per analysis of the host)."""
    rows = store.incidents(IncidentQuery(host=HOST, page=Page(limit=1000)))
    tags = {row.id.removeprefix(f"{row.engine_id}-") for row in rows}
    found = []
    for row in rows:
        story = json.loads(row.json)
        tag = row.id.removeprefix(f"{row.engine_id}-")
        found.append(
            (row.engine_id, row.version, len(story["alert_ids"]), row.json.replace(tag, "TAG"))
        )
    return sorted(found), tags


EVERY_4 = ("--checkpoint-batches", "4", "--checkpoint-seconds", "600", "--fetch", "1")
"""A host checkpointed after its batches 1, 5, 9, 13 ... (the first always carries one; one
batch per fetch, so that the checkpoints fall there however the batches arrive)."""
KILLED_AFTER = 11
"""Batches stored when the worker is killed: 10 and 11 are after the last checkpoint."""


def test_a_worker_killed_in_the_middle_of_the_attack_goes_on_with_the_same_incidents(
    nats_server, database, tmp_path, events
):
    """kill -9 once the attack's incident is open, two batches after the host's last
    checkpoint: the restarted worker restores the host's analysis from its checkpoint and
    analyses those two batches again from the stream, so the incident grows on (same id,
    versions, alerts) as in an uninterrupted run, and no alert or incident row is stored
    twice."""
    reference_bus = started(tmp_path / "nats-reference")
    reference = enrolled_store(f"sqlite:///{tmp_path / 'reference.db'}")
    worker = Worker(
        bus=reference_bus.url,
        db=f"sqlite:///{tmp_path / 'reference.db'}",
        state_dir=tmp_path / "r",
        extra=EVERY_4,
    )
    try:
        sequences = publish_all(reference_bus.url, events)
        wait_for_acked(reference, sequences[-1], worker=worker)
    finally:
        worker.stop()
        reference_bus.stop()
    expected, _ = _incidents(reference)
    expected_alerts = reference.alerts(AlertQuery(host=HOST, page=Page(limit=100_000)))
    assert expected, "the lab recording makes an incident"

    store = enrolled_store(database)
    worker = Worker(bus=nats_server.url, db=database, state_dir=tmp_path / "w", extra=EVERY_4)
    publish_all(nats_server.url, events, sequences=set(sequences[:KILLED_AFTER]))
    wait_for_acked(store, sequences[KILLED_AFTER - 1], worker=worker)
    worker.kill()
    at_kill, _ = _incidents(store)
    assert at_kill, "the attack's incident is open when the worker is killed"
    publish_all(nats_server.url, events, sequences=set(sequences[KILLED_AFTER:]))
    port = free_port()
    listen = ("--metrics-listen", f"127.0.0.1:{port}")
    worker = Worker(
        bus=nats_server.url, db=database, state_dir=tmp_path / "w", extra=(*EVERY_4, *listen)
    )
    try:
        wait_for_acked(store, sequences[-1], worker=worker)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    finally:
        worker.stop()
    found, tags = _incidents(store)
    assert found == expected
    assert len(tags) == 1, "one analysis of the host all along"
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.decode())
        for sample in family.samples
    }
    assert samples["provarmor_worker_checkpoints_restored"] == 1
    assert samples["provarmor_worker_checkpoints_rebuilt"] == 0
    assert samples["provarmor_worker_checkpoints_replayed"] == 2
    assert at_kill[-1][1] < found[-1][1], "the kill came before the incident's last version"
    alerts = store.alerts(AlertQuery(host=HOST, page=Page(limit=100_000)))
    assert sorted(a.id for a in alerts) == sorted(a.id for a in expected_alerts)
    assert_stored_once(store, events)
    reference.close()
    store.close()


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def scrape_when(
    port: int, name: str, value: float, *, worker: Worker, deadline_s: float = 30
) -> dict[str, float]:
    """The worker's metrics once ``name`` reads ``value``: a worker counts a fetch after its
    commit, so the store can show a batch a moment before /metrics does."""
    end = time.monotonic() + deadline_s
    samples = scrape(port)
    while samples.get(name) != value:
        assert time.monotonic() < end, f"{name} = {samples.get(name)}: {worker.log.read_text()}"
        time.sleep(0.05)
        samples = scrape(port)
    return samples


async def first_in_stream(url: str) -> int:
    client = await connect(url, name="test")
    try:
        return int((await client.jetstream().stream_info(STREAM)).state.first_seq)
    finally:
        await client.close()


def test_batches_a_full_stream_dropped_before_a_worker_took_them_are_counted_lost(
    nats_server, tmp_path, events
):
    """The stream drops its oldest batches when it is full (JetStream's default), analysed
    or not: a worker that comes after that stores the rest and counts the agent's sequence
    gap on /metrics and in its log, never silently."""
    database = f"sqlite:///{tmp_path / 'manager.db'}"
    store = enrolled_store(database)
    messages = batches(events)[:16]
    publisher = BusPublisher(
        nats_server.url, layout=StreamLayout(partitions=1, max_bytes=24_000), window=1
    )
    try:
        assert publisher.publish(messages) == len(messages)
    finally:
        publisher.close()
    first = asyncio.run(first_in_stream(nats_server.url))
    assert 1 < first < len(messages), "the stream dropped some batches and kept some"
    port = free_port()
    worker = Worker(
        bus=nats_server.url,
        db=database,
        state_dir=tmp_path / "w",
        extra=("--metrics-listen", f"127.0.0.1:{port}"),
    )
    kept = messages[first - 1 :]
    try:
        wait_for_acked(store, messages[-1].sequence, worker=worker)
        samples = scrape_when(port, "provarmor_worker_batches", len(kept), worker=worker)
    finally:
        worker.stop()
    assert samples["provarmor_worker_sequence_gaps"] == 1
    assert samples["provarmor_worker_events_lost"] == kept[0].after == (first - 1) * BATCH
    assert f"{kept[0].after} events never reached this worker (lost)" in worker.log.read_text()
    store.close()
