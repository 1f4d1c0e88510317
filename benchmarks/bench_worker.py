"""The fleet worker's analysis hot path without the bus: N hosts' paced streams, in batches
of one agent flush interval, through the manager's :class:`~provarmor.manager.ingest.
Ingestor` (parse, graph, rules, model, incidents, findings store), hosts interleaved as a
worker's partition delivers them. One process, one core: events per CPU second, and per
wall second (that one includes the commits' waits on the disk, and on a shared machine the
other processes' load).

    python benchmarks/bench_worker.py --hosts 20 --rate 100 --seconds 30 [--model BUNDLE]
                                      [--db sqlite|postgresql|URL] [--repeat 3] [--profile OUT]
                                      [--checkpoint-batches N --checkpoint-seconds S]
                                      [--fetch N]

Without ``--checkpoint-batches`` every batch carries its host's checkpoint (the embedded
manager's way); with it the ingestor checkpoints as a worker does, the messages in memory
standing for the stream (its replay source). ``--fetch N`` hands the ingestor N messages at a
time (:meth:`~provarmor.manager.ingest.Ingestor.ingest_many`, as a worker's fetch: one commit
for all); without it, one at a time (:meth:`~provarmor.manager.ingest.Ingestor.ingest`).

The streams are :mod:`bench_fleet`'s (the same recordings, ids remapped per host and loop,
timestamps paced at ``--rate`` events/s per host); ``--profile`` writes cProfile statistics
of the last repeat.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fleet import RECORDINGS, Workload, agent_id, enrol, findings_database, host_id

from provarmor.cli.server_commands import detection_kit, server_settings
from provarmor.manager.database import open_findings_store
from provarmor.manager.ingest import (
    CheckpointCounters,
    Ingestor,
    Replay,
    StoredBatch,
    Upload,
    graph_opener,
)
from provarmor.model.codec import encode_ndjson
from provarmor.model.event import Host


def bodies(
    workload: Workload, *, hosts: int, events: int, batch: int
) -> list[tuple[int, int, bytes]]:
    """``(host number, end sequence, NDJSON body)`` in the order a worker gets them."""
    start = time.time_ns()
    streams = []
    for number in range(hosts):
        host = Host(id=host_id(number), name=host_id(number))
        stream = []
        for first in range(0, events, batch):
            chunk = [
                workload.event(host, number, i, start)
                for i in range(first, min(first + batch, events))
            ]
            stream.append((number, first + len(chunk), encode_ndjson(chunk)))
        streams.append(stream)
    return [item for round_ in zip(*streams, strict=True) for item in round_]


def replay_from(messages: list[tuple[int, int, bytes]]) -> Replay:
    """The messages as a replay source (their index is their position)."""

    def replay(host: str, position: int) -> Iterator[StoredBatch]:
        for index, (number, sequence, body) in enumerate(messages[position:], start=position + 1):
            if host_id(number) == host:
                yield StoredBatch(
                    position=index, agent_id=agent_id(number), sequence=sequence, body=body
                )

    return replay


def run_once(
    options: argparse.Namespace,
    messages: list[tuple[int, int, bytes]],
    profile: cProfile.Profile | None,
) -> tuple[float, float, CheckpointCounters, dict[str, int]]:
    """CPU seconds and wall seconds of the ingest loop (the waits on disk are in the wall
    time only: a commit that waits for a checkpoint's ``fsync`` uses no CPU), the checkpoint
    counters and the rule memo's (shared by the hosts' Sigma detectors)."""
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as scratch_name:
        scratch = Path(scratch_name)
        with findings_database(options.db, scratch) as url:
            settings = server_settings(database_url=url, state_dir=scratch, model=options.model)
            store = open_findings_store(url)
            enrol(store, options.hosts)
            kit = detection_kit(settings)
            ingestor = Ingestor(
                store,
                kit=kit,
                open_graph=graph_opener(database_url=url, state_dir=scratch),
                max_batch_events=10**9,
                models_dir=scratch / "models",
                replay=replay_from(messages) if options.checkpoint_batches else None,
                checkpoint_batches=options.checkpoint_batches or 1,
                checkpoint_seconds=options.checkpoint_seconds,
            )
            agents = [store.agent(agent_id(n)) for n in range(options.hosts)]
            started = time.process_time()
            started_wall = time.perf_counter()
            if profile is not None:
                profile.enable()
            uploads = []
            for position, (number, sequence, body) in enumerate(messages, start=1):
                agent = agents[number]
                assert agent is not None
                uploads.append(Upload(agent=agent, sequence=sequence, body=body, position=position))
            if options.fetch:
                for first in range(0, len(uploads), options.fetch):
                    ingestor.ingest_many(uploads[first : first + options.fetch])
            else:
                for upload in uploads:
                    ingestor.ingest(
                        upload.agent,
                        sequence=upload.sequence,
                        body=upload.body,
                        position=upload.position,
                    )
            if profile is not None:
                profile.disable()
            spent = time.process_time() - started
            wall = time.perf_counter() - started_wall
            checkpoints = ingestor.checkpoints
            ingestor.close()
            store.close()
    return spent, wall, checkpoints, kit.ruleset.index.memo_counts()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--flush", type=float, default=0.25)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--checkpoint-batches", type=int, default=0)
    parser.add_argument("--checkpoint-seconds", type=float, default=0.0)
    parser.add_argument("--fetch", type=int, default=0, help="messages per ingest_many call")
    options = parser.parse_args()
    workload = Workload.load(RECORDINGS, options.rate)
    per_host = int(options.seconds * options.rate) + 1
    messages = bodies(
        workload,
        hosts=options.hosts,
        events=per_host,
        batch=max(1, int(options.rate * options.flush)),
    )
    total = per_host * options.hosts
    rates = []
    for repeat in range(options.repeat):
        profile = cProfile.Profile() if options.profile and repeat == options.repeat - 1 else None
        spent, wall, checkpoints, memo = run_once(options, messages, profile)
        rates.append(total / spent)
        print(
            json.dumps(
                {
                    "events": total,
                    "cpu_seconds": round(spent, 2),
                    "events_per_cpu_second": round(total / spent),
                    "wall_seconds": round(wall, 2),
                    "events_per_wall_second": round(total / wall),
                    "checkpoints": {
                        "written": checkpoints.written,
                        "bytes": checkpoints.bytes,
                        "cpu_seconds": round(checkpoints.seconds, 2),
                    },
                    "rule_memo": memo,
                }
            )
        )
        if profile is not None:
            profile.dump_stats(str(options.profile))
    spread = statistics.stdev(rates) if len(rates) > 1 else 0.0
    print(
        f"{statistics.mean(rates):,.0f} ± {spread:,.0f} events per CPU second ({len(rates)} runs)"
    )


if __name__ == "__main__":
    main()
