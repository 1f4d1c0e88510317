"""Replay throughput of the whole analysis pipeline on one core: events -> graph -> rules +
anomaly model -> campaigns -> incidents.

    python benchmarks/bench_pipeline.py --input DATASET_DIR_OR_NDJSON [--model MODEL]
        [--store memory|sqlite] [--rules DIR ...] [--repeat 3]

Events are decoded into memory first (decoding is measured by bench_ingest.py); the figure
is the pipeline's own rate, median of ``--repeat`` runs, for four stages added one at a
time: graph only, + rules, + model, + incident engine (everything).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.evaluation.dataset import EVENTS_FILE
from provarmor.graph.store import GraphStore, MemoryGraphStore
from provarmor.model.event import Event
from provarmor.pipeline.analysis import Analysis, batches
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson
from provarmor.storage.sqlite_graph import SqliteGraphStore

BUNDLED = Path(__file__).resolve().parents[1] / "src" / "provarmor" / "data" / "rules"


def _load(path: Path) -> list[Event]:
    file = path / EVENTS_FILE if path.is_dir() else path
    return list(read_ndjson(file, report=IngestReport(source=str(file)), host=HostContext()))


def _store(kind: str, tmp: Path) -> GraphStore:
    return MemoryGraphStore() if kind == "memory" else SqliteGraphStore(tmp / "graph.db")


def _run(analysis: Analysis, events: list[Event], *, engine: bool) -> float:
    started = time.perf_counter()
    if engine:
        analysis.collect(events)
    else:
        # everything but the incident engine: builder, store, detectors
        for batch in batches(events):
            for event in batch:
                analysis.builder.add(event)
                for detector in analysis.detectors:
                    detector.on_event(event)
            analysis.store.apply(analysis.builder.drain())
        analysis.store.apply(analysis.builder.drain(full=True))
    return len(events) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--rules", type=Path, nargs="*", default=[BUNDLED])
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    events = _load(args.input)
    model = load_bundle(args.model) if args.model is not None else None
    rules = tuple(args.rules)
    SigmaDetector.from_paths(list(rules))  # warm the rule parser's caches
    stages = [
        ("graph only", AnalysisPlan(), False),
        ("+ rules", AnalysisPlan(rules=rules), False),
        ("+ model", AnalysisPlan(rules=rules, model=model), False),
        ("+ incidents (all)", AnalysisPlan(rules=rules, model=model), True),
    ]
    print(f"events {len(events):,} from {args.input}, store {args.store}, one core")
    for name, plan, engine in stages:
        rates = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                analysis = build_analysis(plan, store=_store(args.store, Path(tmp)))
                rates.append(_run(analysis, events, engine=engine))
        print(f"{name:20s} {statistics.median(rates):>10,.0f} events/s")


if __name__ == "__main__":
    main()
