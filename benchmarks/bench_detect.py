"""Replay throughput with rules on: canonical NDJSON -> graph (SQLite) + Sigma, one core.

    python benchmarks/bench_detect.py --input events.ndjson --rules DIR [DIR ...]

Runs the same replay twice on the same input: graph only, then graph with every given
Sigma rule evaluated on each event, and prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.model.event import Event
from provarmor.pipeline.ingest import build_graph
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson
from provarmor.storage.sqlite_graph import SqliteGraphStore


def _events(path: Path) -> Iterable[Event]:
    return read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext())


def _replay(path: Path, detector: SigmaDetector | None) -> tuple[float, int, int]:
    alerts = 0

    def stream() -> Iterable[Event]:
        nonlocal alerts
        for event in _events(path):
            if detector is not None:
                alerts += len(detector.on_event(event))
            yield event

    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteGraphStore(Path(tmp) / "graph.db")
        started = time.perf_counter()
        counters = build_graph(stream(), store)
        if detector is not None:
            alerts += len(detector.flush())
        seconds = time.perf_counter() - started
        store.close()
    return counters.events / seconds, counters.events, alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--rules", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    detector, report = SigmaDetector.from_paths(args.rules)
    graph_rate, events, _ = _replay(args.input, None)
    rules_rate, _, alerts = _replay(args.input, detector)
    print(f"events           {events:,}")
    print(f"rules            {len(report.loaded)} loaded ({len(report.unsupported)} unsupported)")
    print(f"graph only       {graph_rate:,.0f} events/s")
    print(f"graph + rules    {rules_rate:,.0f} events/s ({alerts:,} alerts)")
    print(f"ratio            {100 * rules_rate / graph_rate:.0f} %")


if __name__ == "__main__":
    main()
