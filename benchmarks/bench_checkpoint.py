"""Cost of the manager's per-host analysis checkpoints, batch by batch.

    python benchmarks/bench_checkpoint.py --input DATASET_DIR [--model MODEL] [--batch 500]
        [--every 1] [--json OUT]
    python benchmarks/bench_checkpoint.py --fleet-seconds 480 --batch 25 --every 40 \\
        --model tests/data/anomaly/model-v2.bundle [--json OUT]

Runs the manager's pipeline for one host (bundled rules, the model if given, incidents) over
a SQLite graph store written behind (as a worker's), fed in batches of ``--batch`` events as
an agent uploads them; after every ``--every`` batches it writes the checkpoint the manager
commits with the batch (:func:`provarmor.pipeline.checkpoint.dump_analysis`; 1: the HTTP
manager, every batch; a worker checkpoints every 10 s: 40 batches of a fleet host), times it
against the analysis (CPU time of this thread: the figures hold on a busy machine), and
writes the pending graph as the ingestor does after the commit.
``--fleet-seconds S``: instead of a dataset, S seconds of one host of the fleet load test
(``bench_fleet.py``: the nodlink attack and the benign mix looped with new ids each loop, at
100 events/s), so the host's history grows as a long-running host's does. At the end the
last checkpoint is restored once (the time a restarted manager takes to open the host).
Prints one JSON line: events, batches, analysis and checkpoint seconds, checkpoint size
(mean, p50, max, last; bytes) and time (mean, p50, max; ms), the same for the first and the
last quarter of the checkpoints (their growth with the host's history), restore ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from provarmor.evaluation.dataset import EVENTS_FILE
from provarmor.manager.detectors import host_analysis_parts, kit_digest, load_detection
from provarmor.manager.settings import ManagerSettings
from provarmor.model.event import Event, Host
from provarmor.pipeline.analysis import batches
from provarmor.pipeline.checkpoint import dump_analysis, load_analysis
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson
from provarmor.storage.sqlite_graph import SqliteGraphStore

FLEET_RATE = 100


def fleet_host(seconds: float) -> list[Event]:
    """One simulated host of the fleet load test, ``seconds`` of it."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_fleet import RECORDINGS, Workload, host_id  # a sibling script

    workload = Workload.load(RECORDINGS, FLEET_RATE)
    host = Host(id=host_id(0), name=host_id(0))
    start = time.time_ns()
    return [workload.event(host, 0, i, start) for i in range(int(seconds * FLEET_RATE))]


def summary(dump_s: list[float], sizes: list[int]) -> dict[str, object]:
    return {
        "checkpoints": len(sizes),
        "bytes_mean": round(statistics.mean(sizes)),
        "ms_mean": round(1000 * statistics.mean(dump_s), 2),
        "ms_max": round(1000 * max(dump_s), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path)
    source.add_argument("--fleet-seconds", type=float)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--every", type=int, default=1, help="batches per checkpoint")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.input is not None:
        file = args.input / EVENTS_FILE if args.input.is_dir() else args.input
        events = list(read_ndjson(file, report=IngestReport(source=str(file)), host=HostContext()))
    else:
        events = fleet_host(args.fleet_seconds)
    kit = load_detection(ManagerSettings(model=args.model))
    digest = kit_digest(kit)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteGraphStore(Path(tmp) / "graph.db")
        analysis, shared = host_analysis_parts(kit, store=store, write_behind=True)
        feed_s, dump_s, sizes = [], [], []
        data = b""
        for number, batch in enumerate(batches(events, size=args.batch, seconds=3600), start=1):
            started = time.thread_time()
            analysis.feed(batch)
            feed_s.append(time.thread_time() - started)
            if number % args.every:
                continue
            started = time.thread_time()
            data = dump_analysis(analysis, shared, kit=digest)
            dump_s.append(time.thread_time() - started)
            sizes.append(len(data))
            analysis.store.flush()  # type: ignore[attr-defined]  (a ReadCachedStore)
        _fresh, loading = host_analysis_parts(kit, store=store, write_behind=True)
        started = time.thread_time()
        load_analysis(data, loading, kit=digest, location="benchmark")
        restore_s = time.thread_time() - started
        store.close()
    quarter = max(len(sizes) // 4, 1)
    result = {
        "input": str(args.input or f"fleet host, {args.fleet_seconds} s"),
        "model": str(args.model or ""),
        "events": len(events),
        "batches": len(feed_s),
        "every": args.every,
        "analysis_s": round(sum(feed_s), 3),
        "checkpoint_s": round(sum(dump_s), 3),
        "analysis_events_per_second": round(len(events) / sum(feed_s)),
        "with_checkpoints_events_per_second": round(len(events) / (sum(feed_s) + sum(dump_s))),
        "checkpoint_bytes": {
            "mean": round(statistics.mean(sizes)),
            "p50": round(statistics.median(sizes)),
            "max": max(sizes),
            "last": sizes[-1],
        },
        "checkpoint_ms": {
            "mean": round(1000 * statistics.mean(dump_s), 1),
            "p50": round(1000 * statistics.median(dump_s), 1),
            "max": round(1000 * max(dump_s), 1),
        },
        "first_quarter": summary(dump_s[:quarter], sizes[:quarter]),
        "last_quarter": summary(dump_s[-quarter:], sizes[-quarter:]),
        "analysis_ms_per_batch": round(1000 * statistics.mean(feed_s), 1),
        "restore_ms": round(1000 * restore_s, 1),
    }
    text = json.dumps(result)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
