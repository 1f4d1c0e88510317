"""Issue 12's fleet load test: simulated agents -> JetStream -> ``provarmor worker``s -> store.

    python benchmarks/bench_fleet.py --hosts 100 --rate 100 --seconds 60 --workers 2 \\
        --json OUT [--db sqlite|postgresql|URL] [--model BUNDLE] \\
        [--kill-worker-at SECONDS] [--restart-bus-at SECONDS] [--fetch N]

The stack is the benchmark's own: a nats-server with JetStream (file store in a temporary
directory, on 127.0.0.1 and a free port), the findings store (``sqlite``: a new file;
``postgresql``: the server ``scripts/postgres-test-server.sh`` starts, in a schema of the
run's own, dropped afterwards; or a ``postgresql://`` URL; a schema per host graph, and
each process's stores share a pool of a few connections, ``pool_size=`` in the URL) with
one enrolled agent per simulated host, and W ``provarmor worker`` processes
(the stream has W partitions, one per worker) running the bundled rules, the anomaly model
(``--model``; without it every host learns its own) and incidents.

**Agents.** Each of the N simulated hosts replays real recordings (the nodlink attack, then
the benign mix: ``--recording``, looped) through the agent's real uplink: its own
:class:`~provarmor.agent.spool.Spool` on disk and a :class:`~provarmor.bus.publisher.
BusSink` (spool position committed on JetStream's ack; the hosts share one
:class:`~provarmor.bus.publisher.BusPublisher` connection). Entity ids and event ids get a
suffix naming the host and the loop, and the host id is the host's own, so every host (and
every loop) is new work for its graph and detectors.

**Pacing, in event time.** Host h's event i is due at wall time ``T0 + phase_h + i / R``
(``phase_h`` spreads the hosts over one flush interval); its ``@timestamp`` *is* that due
time, so event time runs with the wall clock at R events/s per host, as a live sensor's
would. The recording's own times map monotonically onto the paced timeline (a process
start, an event's end go to the due time of the first event at or after them), so order and
durations stay consistent. Every ``--flush`` seconds (the agent's flush interval, 0.25 s)
each agent appends its due events to its spool and delivers the spool to the bus, as the
agent's loop does; a publish that fails (broker down) leaves the batch in the spool for the
next cycle. Events are produced for ``--seconds``; then the run waits until every agent's
acknowledged sequence in the findings store reached its last event (``--drain`` seconds at
most).

**Figures** (JSON):

* ``events_sent``: events the agents produced; ``events_analysed``: distinct (host, event
  id) stored; ``lost`` = sent - analysed; ``duplicates``: event rows stored more than once.
* ``events_per_second``: events analysed / (last batch analysed - first event due): the
  sustained rate end to end; it equals the offered rate ``hosts * rate`` only when the
  workers keep up.
* ``latency_p50_s``/``p99``/``max``: per event, the wall time its batch had been analysed
  (``batches.received_ns``, stamped by the worker after the analysis of the batch's whole
  fetch, just before the fetch's commit) minus the event's ``@timestamp`` (its paced due
  time). It includes the agent's flush interval, the bus, the queueing before a worker and
  the analysis.
* ``alerts``/``incidents`` stored and ``*_expected``: what one host's event stream gives in
  a reference analysis run in this process with the same settings (batches of one flush
  interval, no faults); every host has the same stream. ``alerts_duplicated``/``missing``:
  per host and per (rule, process) key, alerts stored beyond/short of the reference;
  ``incidents_duplicated``: per host, incidents stored beyond the reference's count.
* ``cpu_seconds``: the workers', the load generator's (this process) and nats-server's.
* ``checkpoints``: the workers' checkpoint counters summed (each prints them when it stops;
  a killed worker's are not in them): checkpoints written, their bytes and the seconds spent
  making them, hosts restored and batches replayed from the stream onto a checkpoint, graph
  flushes. ``stream_gaps``: the same for the workers' ``sequence_gaps`` and ``events_lost``
  (batches the stream dropped before a worker took them: JetStream's discard when full) and
  ``filled`` (batches delivered out of order, after a kill or a broker restart, taken from
  the stream before the batch that followed them).
  ``load_average``: the machine's 1-minute load average before and after the run (other
  work on the machine shows there).

**Faults.** ``--kill-worker-at T``: at T seconds after the start, kill -9 the worker of
partition 0 and start a replacement with the same state directory (its partition's
unacknowledged batch comes back after ``--ack-wait``). ``--restart-bus-at T``: stop
nats-server (SIGTERM), keep it down ``--bus-down`` seconds, start it again on the same port
and store.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import math
import os
import re
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from msgspec.structs import replace

from provarmor.agent.delivery import Delivery
from provarmor.agent.spool import Spool, SpoolPosition
from provarmor.bus.publisher import BusPublisher, BusSink
from provarmor.bus.stream import StreamLayout
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.store import AgentRecord, TokenRecord
from provarmor.model.codec import parse_json_event
from provarmor.model.event import Event, Host
from provarmor.testing.nats import NatsServer, started

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = (
    ROOT / "tests/data/lab/nodlink-ubuntu-seed1/events.ndjson.gz",
    ROOT / "tests/data/lab/benign-seed2/events.ndjson.gz",
)
PROVARMOR = Path(sys.executable).parent / "provarmor"
NS = 1_000_000_000


# -- the workload: recordings replayed per host, paced in event time ------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    templates: list[Event]
    """The recordings one after the other (a host loops over them)."""
    segments: list[tuple[int, list[int]]]
    """Per recording: its first index in ``templates`` and its events' timestamps, sorted
    (the events stay in the recording's order, the order the sensor delivered them)."""
    rate: int
    """Events per second per host."""

    @classmethod
    def load(cls, paths: Sequence[Path], rate: int) -> Workload:
        templates: list[Event] = []
        segments: list[tuple[int, list[int]]] = []
        for path in paths:
            events = [
                parse_json_event(line) for line in gzip.decompress(path.read_bytes()).splitlines()
            ]
            segments.append((len(templates), sorted(e.timestamp for e in events)))
            templates += events
        return cls(templates, segments, rate)

    def due_ns(self, start_ns: int, index: int) -> int:
        return start_ns + index * NS // self.rate

    def event(self, host: Host, number: int, index: int, start_ns: int) -> Event:
        """Host ``number``'s event ``index``: the template with ids of the host and loop and
        the paced timestamps."""
        loop, position = divmod(index, len(self.templates))
        template = self.templates[position]
        base = loop * len(self.templates)
        first, stamps = next(s for s in reversed(self.segments) if s[0] <= position)

        def warp(ns: int) -> int:
            """The recording's time ``ns`` on the paced timeline."""
            if ns <= 0:
                return ns
            if ns < stamps[0]:
                return self.due_ns(start_ns, base + first) - (stamps[0] - ns)
            found = min(bisect.bisect_left(stamps, ns), len(stamps) - 1)
            return self.due_ns(start_ns, base + first + found)

        suffix = f"~{number}.{loop}"
        process = template.process
        parent = process.parent
        if parent is not None:
            parent = replace(parent, entity_id=parent.entity_id + suffix)
        process = replace(
            process, entity_id=process.entity_id + suffix, parent=parent, start=warp(process.start)
        )
        target = template.target
        if target is not None and target.process is not None:
            target = replace(
                target, process=replace(target.process, entity_id=target.process.entity_id + suffix)
            )
        info = replace(template.event, id=template.event.id + suffix, end=warp(template.event.end))
        return replace(
            template,
            timestamp=self.due_ns(start_ns, index),
            event=info,
            host=host,
            process=process,
            target=target,
        )


def host_id(number: int) -> str:
    return f"bench-host-{number}"


def agent_id(number: int) -> str:
    return f"bench-agent-{number}"


def normalised(entity_id: str, number: int) -> str:
    """An entity id of host ``number`` as the reference host (number 0) has it."""
    return entity_id.replace(f"~{number}.", "~0.")


@dataclass(slots=True)
class SimulatedAgent:
    number: int
    workload: Workload
    start_ns: int
    spool: Spool
    delivery: Delivery
    """The agent's own delivery step: spool -> :class:`BusSink`."""
    host: Host
    produced: int = 0

    def produce(self, until_ns: int, limit: int) -> None:
        """Append every event due by ``until_ns`` (``limit`` in all) to the spool."""
        events = []
        while (
            self.produced < limit and self.workload.due_ns(self.start_ns, self.produced) <= until_ns
        ):
            events.append(self.workload.event(self.host, self.number, self.produced, self.start_ns))
            self.produced += 1
        if events:
            self.spool.append(events)

    def pending(self) -> int:
        return self.spool.counters().pending


# -- the stack --------------------------------------------------------------------------------


def printed_counters(root: Path, workers: int, kind: str) -> dict[str, float]:
    """The counters of ``kind`` (``CheckpointCounters``, ``WorkerCounters``) the workers
    printed when they stopped, summed (numbers only)."""
    total: dict[str, float] = {}
    for partition in range(workers):
        text = (root / f"worker-{partition}.log").read_text(errors="replace")
        for found in re.finditer(kind + r"\(([^)]*)\)", text):
            for name, value in re.findall(r"(\w+)=([\d.]+)", found.group(1)):
                total[name] = total.get(name, 0.0) + float(value)
    return {name: round(value, 3) for name, value in total.items()}


@dataclass(slots=True)
class Workers:
    """W ``provarmor worker`` processes, one per partition."""

    root: Path
    command: list[str]
    count: int
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[int, int] = field(default_factory=dict)
    """How many times each partition's worker was started."""
    cpu_seconds: float = 0.0
    """CPU time of the workers since they were ready (killed ones included; a replacement's
    start-up counts)."""

    def start(self, partition: int) -> None:
        log_path = self.root / f"worker-{partition}.log"
        with log_path.open("ab") as log:
            command = [*self.command, "--state-dir", str(self.root / f"worker-{partition}")]
            command += ["--partitions", str(self.count), "--partition", str(partition)]
            self.starts[partition] = self.starts.get(partition, 0) + 1
            self.processes[partition] = subprocess.Popen(
                command, stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Each worker printed the line it prints once its analysis is built."""
        deadline = time.monotonic() + timeout
        marker = "worker of partition"
        while True:
            logs = [
                (self.root / f"worker-{p}.log").read_text(errors="replace") for p in self.processes
            ]
            if all(
                log.count(marker) >= self.starts[p]
                for p, log in zip(self.processes, logs, strict=True)
            ):
                self.cpu_seconds -= sum(process_cpu(p.pid) for p in self.processes.values())
                return
            self.check_alive()
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the workers did not start within {timeout:.0f} s: see {self.root}"
                )
            time.sleep(0.1)

    def kill_and_replace(self, partition: int) -> None:
        process = self.processes[partition]
        self.cpu_seconds += process_cpu(process.pid)
        process.kill()
        process.wait()
        self.start(partition)

    def check_alive(self) -> None:
        for partition, process in self.processes.items():
            if process.poll() is not None:
                raise SystemExit(
                    f"worker {partition} exited ({process.returncode}): see {self.root}"
                )

    def stop(self) -> float:
        """Stop every worker; returns the workers' CPU seconds in all."""
        total = self.cpu_seconds
        for process in self.processes.values():
            if process.poll() is None:
                total += process_cpu(process.pid)
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return total


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (its children not counted)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def findings_database(choice: str, scratch: Path) -> Iterator[str]:
    """The findings store's URL: a new SQLite file, or a schema of the run's own in
    PostgreSQL (dropped afterwards with the per-host graph schemas)."""
    if choice == "sqlite":
        yield f"sqlite:///{scratch / 'manager.db'}"
        return
    if choice == "postgresql":
        script = ROOT / "scripts/postgres-test-server.sh"
        base = subprocess.run(
            [str(script)], check=True, capture_output=True, text=True
        ).stdout.strip()
    else:
        base = choice
    import psycopg

    schema = f"benchfleet_{secrets.token_hex(4)}"
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}schema={schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as db:
            names = db.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{schema}%",)
            ).fetchall()
            for (name,) in names:
                db.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return list(db.execute(sql).fetchall())
    import psycopg

    from provarmor.storage.postgres_dialect import split_schema

    base, schema = split_schema(url)
    with psycopg.connect(base) as db:
        db.execute(f'SET search_path TO "{schema}"')
        return list(db.execute(sql).fetchall())


# -- the reference: one host's stream, analysed here without faults ---------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    alerts: Counter[tuple[str, tuple[str, ...]]]
    incidents: int


def alert_key(raw: str | bytes, number: int) -> tuple[str, tuple[str, ...]]:
    alert = msgspec.json.decode(raw)
    entities = tuple(sorted(normalised(e, number) for e in alert.get("process_entity_ids", ())))
    return alert["rule_id"], entities


def reference(
    workload: Workload, events: int, *, model: Path | None, batch: int, scratch: Path
) -> Reference:
    from provarmor.cli.server_commands import detection_kit, server_settings
    from provarmor.manager.ingest import Ingestor, graph_opener
    from provarmor.model.codec import encode_ndjson

    url = f"sqlite:///{scratch / 'reference.db'}"
    settings = server_settings(database_url=url, state_dir=scratch / "reference", model=model)
    store = open_findings_store(url)
    enrol(store, 1)
    ingestor = Ingestor(
        store,
        kit=detection_kit(settings),
        open_graph=graph_opener(database_url=url, state_dir=scratch / "reference"),
        max_batch_events=10**9,
        models_dir=scratch / "reference" / "models",
    )
    agent = store.agent(agent_id(0))
    assert agent is not None
    host = Host(id=host_id(0), name=host_id(0))
    start = time.time_ns()
    for first in range(0, events, batch):
        chunk = [
            workload.event(host, 0, i, start) for i in range(first, min(first + batch, events))
        ]
        ingestor.ingest(agent, sequence=first + len(chunk), body=encode_ndjson(chunk))
    ingestor.close()
    store.close()
    alerts = Counter(alert_key(raw, 0) for (raw,) in query(url, "SELECT json FROM alerts"))
    incidents = int(str(query(url, "SELECT COUNT(*) FROM incidents")[0][0]))
    return Reference(alerts, incidents)


def enrol(store: object, hosts: int) -> None:
    now = time.time_ns()
    for number in range(hosts):
        store.add_agent(  # type: ignore[attr-defined]
            AgentRecord(
                id=agent_id(number),
                host_id=host_id(number),
                hostname=host_id(number),
                enrolled_ns=now,
            ),
            credential=TokenRecord(
                id=agent_id(number), role=Role.AGENT, salt="s", digest="d", created_ns=now
            ),
        )


# -- one run ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    hosts: int
    rate: int
    seconds: float
    workers: int
    db: str
    model: Path | None
    kill_worker_at: float | None
    restart_bus_at: float | None
    bus_down: float
    flush: float
    batch_events: int
    ack_wait: float
    checkpoint_batches: int | None
    checkpoint_seconds: float | None
    fetch: int | None
    drain: float
    recordings: tuple[Path, ...]


def run(options: Options) -> dict[str, object]:
    workload = Workload.load(options.recordings, options.rate)
    per_host = math.floor(options.seconds * options.rate) + 1  # due times 0 .. seconds
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch_name:
        scratch = Path(scratch_name)
        expected = reference(
            workload,
            per_host,
            model=options.model,
            batch=max(1, int(options.rate * options.flush)),
            scratch=scratch,
        )
        with findings_database(options.db, scratch) as url:
            return measure(options, workload, per_host, expected, url, scratch)


def measure(  # noqa: PLR0913 (the run and what it measures against)
    options: Options,
    workload: Workload,
    per_host: int,
    expected: Reference,
    url: str,
    scratch: Path,
) -> dict[str, object]:
    server = started(scratch / "nats")
    store = open_findings_store(url)
    enrol(store, options.hosts)
    store.close()
    command = [str(PROVARMOR), "worker", "--bus", server.url, "--db", url]
    command += ["--ack-wait", str(options.ack_wait)]
    if options.checkpoint_batches is not None:
        command += ["--checkpoint-batches", str(options.checkpoint_batches)]
    if options.checkpoint_seconds is not None:
        command += ["--checkpoint-seconds", str(options.checkpoint_seconds)]
    if options.fetch is not None:
        command += ["--fetch", str(options.fetch)]
    if options.model is not None:
        command += ["--model", str(options.model)]
    workers = Workers(scratch, command, options.workers)
    publisher = BusPublisher(
        server.url, layout=StreamLayout(partitions=options.workers), window=64, ack_timeout_s=2.0
    )
    agents: list[SimulatedAgent] = []
    faults = Faults(options, workers, server)
    worker_cpu = 0.0
    load_before = os.getloadavg()[0]
    try:
        for partition in range(options.workers):
            workers.start(partition)
        workers.wait_ready()
        start_ns = time.time_ns() + NS
        for number in range(options.hosts):
            spool = Spool(
                scratch / "spools" / str(number), max_bytes=1 << 30, fsync=False, consumers=["bus"]
            )
            sink: BusSink[SpoolPosition] = BusSink(
                publisher,
                agent_id=agent_id(number),
                host_id=host_id(number),
                state_file=scratch / "spools" / f"{number}.acked",
                make_position=lambda sequence: SpoolPosition(sequence=sequence),
            )
            phase = int(options.flush * NS * number / options.hosts)
            agents.append(
                SimulatedAgent(
                    number,
                    workload,
                    start_ns + phase,
                    spool,
                    Delivery(spool, sink, options.batch_events),
                    Host(id=host_id(number), name=host_id(number)),
                )
            )
        cpu_before = own_cpu()
        with ThreadPoolExecutor(max_workers=min(32, options.hosts)) as pool:
            next_tick = time.monotonic()
            while True:
                now = time.time_ns()
                faults.step((now - start_ns) / NS)
                for agent in agents:
                    agent.produce(now, per_host)
                list(pool.map(lambda a: a.delivery.run(), agents))
                workers.check_alive()
                produced = all(a.produced == per_host and a.pending() == 0 for a in agents)
                if produced and faults.over():
                    break
                next_tick += options.flush
                time.sleep(max(0.0, next_tick - time.monotonic()))
        generator_cpu = own_cpu() - cpu_before
        delivered_ns = time.time_ns()
        drained = wait_analysed(url, agents, workers, deadline=time.monotonic() + options.drain)
        worker_cpu = workers.stop()
    finally:
        worker_cpu = worker_cpu or workers.stop()
        publisher.close()
        for agent in agents:
            agent.spool.close()
        nats_cpu = process_cpu(server.process.pid) if server.process is not None else 0.0
        server.stop()
    result = figures(url, options, agents, expected, start_ns=start_ns)
    result.update(
        checkpoints=printed_counters(scratch, options.workers, "CheckpointCounters"),
        stream_gaps={
            name: value
            for name, value in printed_counters(scratch, options.workers, "WorkerCounters").items()
            if name in ("sequence_gaps", "events_lost", "filled")
        },
        load_average={"before": load_before, "after": os.getloadavg()[0]},
        faults=faults.times,
        drained=drained,
        seconds_after_last_delivery=round((time.time_ns() - delivered_ns) / NS, 2),
        publish_failures=sum(a.delivery.errors for a in agents),
        cpu_seconds={
            "workers": round(worker_cpu, 1),
            "generator": round(generator_cpu, 1),
            "nats_server": round(nats_cpu, 1),
        },
    )
    result["events_per_worker_cpu_second"] = round(
        int(str(result["events_analysed"])) / max(worker_cpu, 1e-9), 1
    )
    return result


@dataclass(slots=True)
class Faults:
    """The faults asked for, each injected once when its time comes."""

    options: Options
    workers: Workers
    server: NatsServer
    times: dict[str, float] = field(default_factory=dict)
    """What happened when (seconds after the start)."""

    def step(self, elapsed: float) -> None:
        kill_at, stop_at = self.options.kill_worker_at, self.options.restart_bus_at
        if kill_at is not None and elapsed >= kill_at and "worker_killed_at_s" not in self.times:
            self.workers.kill_and_replace(0)
            self.times["worker_killed_at_s"] = round(elapsed, 2)
        if stop_at is not None and elapsed >= stop_at and "bus_stopped_at_s" not in self.times:
            self.server.stop()
            self.times["bus_stopped_at_s"] = round(elapsed, 2)
        stopped = self.times.get("bus_stopped_at_s")
        if (
            stopped is not None
            and self.server.process is None
            and elapsed >= stopped + self.options.bus_down
        ):
            self.server.start()
            self.times["bus_started_at_s"] = round(elapsed, 2)

    def over(self) -> bool:
        """Every fault asked for happened (and the bus is up again)."""
        killed = self.options.kill_worker_at is None or "worker_killed_at_s" in self.times
        restarted = self.options.restart_bus_at is None or "bus_started_at_s" in self.times
        return killed and restarted


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_analysed(
    url: str, agents: list[SimulatedAgent], workers: Workers, *, deadline: float
) -> bool:
    """Every agent's acknowledged sequence reached its last event (False: ``deadline``)."""
    last = {agent_id(a.number): a.produced for a in agents}
    while time.monotonic() < deadline:
        acked = dict(query(url, "SELECT id, acked_sequence FROM agents"))
        if all(int(str(acked.get(agent, 0))) >= count for agent, count in last.items()):
            return True
        workers.check_alive()
        time.sleep(0.5)
    return False


def figures(
    url: str, options: Options, agents: list[SimulatedAgent], expected: Reference, *, start_ns: int
) -> dict[str, object]:
    sent = sum(a.produced for a in agents)
    rows = query(url, "SELECT host, COUNT(*), COUNT(DISTINCT event_id) FROM events GROUP BY host")
    stored = sum(int(str(r[1])) for r in rows)
    distinct = sum(int(str(r[2])) for r in rows)
    latencies: list[tuple[float, int]] = []  # (seconds, events)
    last_ns = start_ns
    by_agent = {agent_id(a.number): a for a in agents}
    batches = query(
        url, "SELECT agent_id, sequence, received_ns FROM batches ORDER BY agent_id, sequence"
    )
    previous: dict[str, int] = {}
    for agent, sequence, received in batches:
        simulated = by_agent[str(agent)]
        first = previous.get(str(agent), 0)
        sequence, received = int(str(sequence)), int(str(received))
        previous[str(agent)] = sequence
        last_ns = max(last_ns, received)
        # events first..sequence-1, due evenly: one latency per event, grouped per batch
        for index in range(first, sequence):
            latencies.append(
                ((received - simulated.workload.due_ns(simulated.start_ns, index)) / NS, 1)
            )
    latencies.sort()
    alerts_stored: Counter[tuple[int, tuple[str, tuple[str, ...]]]] = Counter()
    for host, raw in query(url, "SELECT host, json FROM alerts"):
        number = int(str(host).rsplit("-", 1)[1])
        alerts_stored[(number, alert_key(str(raw), number))] += 1
    duplicated = missing = 0
    for number in range(options.hosts):
        keys = set(expected.alerts) | {k for (n, k) in alerts_stored if n == number}
        for key in keys:
            have, want = alerts_stored[(number, key)], expected.alerts[key]
            duplicated += max(0, have - want)
            missing += max(0, want - have)
    per_host = Counter(str(host) for (host,) in query(url, "SELECT host FROM incidents"))
    incidents = sum(per_host.values())
    incidents_duplicated = sum(
        max(0, per_host[host_id(n)] - expected.incidents) for n in range(options.hosts)
    )
    seconds = (last_ns - start_ns) / NS
    return {
        "hosts": options.hosts,
        "rate_per_host": options.rate,
        "seconds": options.seconds,
        "workers": options.workers,
        "db": "sqlite" if url.startswith("sqlite") else "postgresql",
        "model": str(options.model) if options.model else None,
        "events_sent": sent,
        "events_analysed": distinct,
        "lost": sent - distinct,
        "duplicates": stored - distinct,
        "alerts": sum(alerts_stored.values()),
        "alerts_expected": sum(expected.alerts.values()) * options.hosts,
        "alerts_duplicated": duplicated,
        "alerts_missing": missing,
        "incidents": incidents,
        "incidents_expected": expected.incidents * options.hosts,
        "incidents_duplicated": incidents_duplicated,
        "offered_events_per_second": options.hosts * options.rate,
        "events_per_second": round(distinct / seconds, 1) if seconds > 0 else 0.0,
        "latency_p50_s": percentile(latencies, 0.50),
        "latency_p99_s": percentile(latencies, 0.99),
        "latency_max_s": round(latencies[-1][0], 3) if latencies else None,
    }


def percentile(values: list[tuple[float, int]], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))][0], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--rate", type=int, default=100, help="events/s per host")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--db", default="sqlite", help="sqlite, postgresql or a postgresql:// URL")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--kill-worker-at", type=float)
    parser.add_argument("--restart-bus-at", type=float)
    parser.add_argument("--bus-down", type=float, default=3.0, help="seconds the bus stays down")
    parser.add_argument("--flush", type=float, default=0.25, help="the agents' flush interval")
    parser.add_argument("--batch-events", type=int, default=5000, help="most events per batch")
    parser.add_argument("--ack-wait", type=float, default=5.0, help="the workers' --ack-wait")
    parser.add_argument("--checkpoint-batches", type=int, help="the workers' option")
    parser.add_argument("--checkpoint-seconds", type=float, help="the workers' option")
    parser.add_argument("--fetch", type=int, help="the workers' option (batches per fetch)")
    parser.add_argument(
        "--drain", type=float, default=180.0, help="most seconds to wait at the end"
    )
    parser.add_argument(
        "--recording", type=Path, action="append", help="events.ndjson.gz (repeatable)"
    )
    options = parser.parse_args()
    result = run(
        Options(
            hosts=options.hosts,
            rate=options.rate,
            seconds=options.seconds,
            workers=options.workers,
            db=options.db,
            model=options.model,
            kill_worker_at=options.kill_worker_at,
            restart_bus_at=options.restart_bus_at,
            bus_down=options.bus_down,
            flush=options.flush,
            batch_events=options.batch_events,
            ack_wait=options.ack_wait,
            checkpoint_batches=options.checkpoint_batches,
            checkpoint_seconds=options.checkpoint_seconds,
            fetch=options.fetch,
            drain=options.drain,
            recordings=tuple(options.recording or RECORDINGS),
        )
    )
    text = json.dumps(result, indent=2)
    print(text)
    if options.json is not None:
        options.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
