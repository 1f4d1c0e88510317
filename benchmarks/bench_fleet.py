"""Events/s through the real bus and real workers (first slice of issue 12's load test).

    python benchmarks/bench_fleet.py [--hosts 8] [--workers 1 2] [--batch 500] [--repeat 3]
                                     [--json OUT]

For each worker count W: start a nats-server with JetStream (file store in a temporary
directory), a SQLite findings store with one enrolled agent per simulated host, and W
``provarmor worker`` processes (the stream has W partitions, one worker each). Every host
replays the nodlink lab recording (tests/data/lab/nodlink-ubuntu-seed1, 2,142 events; the
host id is replaced, so each host is new work for its own graph and detectors) in batches of
``--batch`` events, published through :class:`provarmor.bus.publisher.BusPublisher`. The
clock runs from the first publish until every agent's acknowledged sequence in the findings
store reaches its last batch; then the stored events are counted against those sent
(``lost``, ``duplicates``). Rules and incidents run (the bundled pack); no anomaly model.
Each worker count is run ``--repeat`` times; the summary line gives events/s as mean ± std.

Not yet the issue's full load test: no --rate/--seconds pacing, no latency percentile, no
PostgreSQL, no fault injection (the tests kill a worker and restart the broker).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from provarmor.bus.message import batch_message
from provarmor.bus.publisher import BusPublisher
from provarmor.bus.stream import StreamLayout
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.store import AgentRecord, EventQuery, Page, TokenRecord
from provarmor.model.codec import parse_json_event
from provarmor.model.event import Event
from provarmor.testing.nats import started

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "tests/data/lab/nodlink-ubuntu-seed1/events.ndjson.gz"
PROVARMOR = Path(sys.executable).parent / "provarmor"


def host_events(events: list[Event], host_id: str) -> list[Event]:
    return [
        msgspec.structs.replace(e, host=msgspec.structs.replace(e.host, id=host_id)) for e in events
    ]


def run(workers: int, *, hosts: int, batch: int, events: list[Event]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
        root = Path(scratch)
        server = started(root / "nats")
        database = f"sqlite:///{root / 'manager.db'}"
        store = open_findings_store(database)
        now = time.time_ns()
        per_host = {f"bench-host-{n}": host_events(events, f"bench-host-{n}") for n in range(hosts)}
        for number, host in enumerate(per_host):
            agent = f"agent-{number}"
            store.add_agent(
                AgentRecord(id=agent, host_id=host, hostname=host, enrolled_ns=now),
                credential=TokenRecord(
                    id=agent, role=Role.AGENT, salt="s", digest="d", created_ns=now
                ),
            )
        processes = []
        for partition in range(workers):
            with (root / f"w{partition}.log").open("wb") as log:
                command = [str(PROVARMOR), "worker", "--bus", server.url, "--db", database]
                command += ["--state-dir", str(root / f"w{partition}")]
                command += ["--partitions", str(workers), "--partition", str(partition)]
                processes.append(
                    subprocess.Popen(
                        command, stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}
                    )
                )
        try:
            layout = StreamLayout(partitions=workers)
            publisher = BusPublisher(server.url, layout=layout, window=32)
            messages = [
                batch_message(
                    host_list[i : i + batch],
                    agent_id=f"agent-{number}",
                    host_id=host,
                    sequence=min(i + batch, len(host_list)),
                )
                for number, (host, host_list) in enumerate(per_host.items())
                for i in range(0, len(host_list), batch)
            ]
            _wait_until_pulling(root, workers)  # each has compiled its rules and is bound
            started_at = time.monotonic()
            publisher.publish(messages)
            publisher.close()
            last = len(events)
            while True:
                acked = [store.agent(f"agent-{n}") for n in range(hosts)]
                if all(a is not None and a.acked_sequence >= last for a in acked):
                    break
                for process in processes:
                    if process.poll() is not None:
                        raise SystemExit(f"a worker died: see {root}")
                time.sleep(0.05)
            elapsed = time.monotonic() - started_at
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=60)
            server.stop()
        sent = hosts * len(events)
        stored = 0
        distinct = 0
        for host in per_host:
            rows = store.search_events(EventQuery(host=host, page=Page(limit=len(events) * 2)))
            stored += len(rows)
            distinct += len({row.event_id for row in rows})
        store.close()
    return {
        "workers": workers,
        "hosts": hosts,
        "events_sent": sent,
        "events_analysed": distinct,
        "lost": sent - distinct,
        "duplicates": stored - distinct,
        "seconds": round(elapsed, 2),
        "events_per_second": round(distinct / elapsed, 1),
    }


def _wait_until_pulling(root: Path, workers: int, timeout: float = 180.0) -> None:
    """Every worker has printed the line it prints once its analysis is built."""
    deadline = time.monotonic() + timeout
    logs = [root / f"w{partition}.log" for partition in range(workers)]
    while not all("worker of partition" in log.read_text(errors="replace") for log in logs):
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start within {timeout:.0f} s; see {root}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    events = [
        parse_json_event(line) for line in gzip.decompress(RECORDING.read_bytes()).splitlines()
    ]
    results = []
    for workers in options.workers:
        rates = []
        for _ in range(options.repeat):
            result = run(workers, hosts=options.hosts, batch=options.batch, events=events)
            print(json.dumps(result))
            results.append(result)
            rates.append(float(str(result["events_per_second"])))
        spread = statistics.stdev(rates) if len(rates) > 1 else 0.0
        print(f"{workers} worker(s): {statistics.mean(rates):,.0f} ± {spread:,.0f} events/s")
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
