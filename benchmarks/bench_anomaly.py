"""Throughput of the anomaly detector alone (events/s, one core) over a recorded dataset.

The first run starts with cold token caches (as a freshly started agent); later runs reuse the
process-wide tokenisation caches (as a long-running agent).

.venv/bin/python benchmarks/bench_anomaly.py MODEL.bundle /tmp/datasets/benign-1
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.anomaly.detector import AnomalyDetector
from provarmor.evaluation.dataset import EVENTS_FILE
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson


def main() -> None:
    model = load_bundle(Path(sys.argv[1]))
    dataset = Path(sys.argv[2])
    events = list(
        read_ndjson(dataset / EVENTS_FILE, report=IngestReport(source="bench"), host=HostContext())
    )
    best = 0.0
    for run in range(3):
        detector = AnomalyDetector(model)
        started = time.perf_counter()
        alerts = 0
        for event in events:
            alerts += len(detector.on_event(event))
        alerts += len(detector.flush())
        seconds = time.perf_counter() - started
        print(f"run {run + 1}: {1e6 * seconds / len(events):.2f} us/event")
        best = max(best, len(events) / seconds)
    print(f"{len(events)} events, {alerts} alerts, {detector.stats}")
    print(f"anomaly detector: {best:,.0f} events/s ({1e6 / best:.2f} us/event, best of 3)")


if __name__ == "__main__":
    main()
