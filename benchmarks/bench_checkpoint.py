"""Cost of the manager's per-host analysis checkpoints, batch by batch.

    python benchmarks/bench_checkpoint.py --input DATASET_DIR [--model MODEL] [--batch 500]
        [--json OUT]

Runs the manager's pipeline for one host (bundled rules, the model if given, incidents) over
a SQLite graph store, fed in batches of ``--batch`` events as an agent uploads them; after
each batch it writes the checkpoint the manager commits with the batch
(:func:`provarmor.pipeline.checkpoint.dump_analysis`) and times it against the batch's own
analysis. At the end the last checkpoint is restored once (the time a restarted manager
takes to open the host). Prints one JSON line: events, batches, analysis and checkpoint
seconds, checkpoint size (mean, p50, max, last; bytes) and time per batch (mean, p50, max;
ms), restore ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from provarmor.evaluation.dataset import EVENTS_FILE
from provarmor.manager.detectors import host_analysis_parts, kit_digest, load_detection
from provarmor.manager.settings import ManagerSettings
from provarmor.pipeline.analysis import batches
from provarmor.pipeline.checkpoint import dump_analysis, load_analysis
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson
from provarmor.storage.sqlite_graph import SqliteGraphStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    file = args.input / EVENTS_FILE if args.input.is_dir() else args.input
    events = list(read_ndjson(file, report=IngestReport(source=str(file)), host=HostContext()))
    kit = load_detection(ManagerSettings(model=args.model))
    digest = kit_digest(kit)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteGraphStore(Path(tmp) / "graph.db")
        analysis, shared = host_analysis_parts(kit, store=store)
        feed_s, dump_s, sizes = [], [], []
        data = b""
        for batch in batches(events, size=args.batch, seconds=3600):
            started = time.perf_counter()
            analysis.feed(batch)
            feed_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            data = dump_analysis(analysis, shared, kit=digest)
            dump_s.append(time.perf_counter() - started)
            sizes.append(len(data))
        _fresh, loading = host_analysis_parts(kit, store=store)
        started = time.perf_counter()
        load_analysis(data, loading, kit=digest, location="benchmark")
        restore_s = time.perf_counter() - started
        store.close()
    result = {
        "input": str(args.input),
        "model": str(args.model or ""),
        "events": len(events),
        "batches": len(sizes),
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
        "analysis_ms_per_batch": round(1000 * statistics.mean(feed_s), 1),
        "restore_ms": round(1000 * restore_s, 1),
    }
    text = json.dumps(result)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
