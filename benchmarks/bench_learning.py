"""Learning mode over recorded datasets, as a host would live them: the learner and the
anomaly detector see every event in order (event time); the first window is learned, the
model enabled, then the remaining datasets (an attack run, say) are scored.

.venv/bin/python benchmarks/bench_learning.py --window 75 tests/data/lab/benign-seed2 \
    tests/data/lab/nodlink-ubuntu-seed1

Prints the window, events and processes learned, the time training took (the one event that
closed the window), events/s while learning, the bundle and checkpoint sizes, and the anomaly
alerts per dataset (during learning, after).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from provarmor.detection.anomaly.bundle import dump_bundle
from provarmor.detection.anomaly.learning import Learner, LearningDetector, Phase, dump_checkpoint
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.evaluation.dataset import EVENTS_FILE
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson


def _events(dataset: Path) -> list[Event]:
    path = dataset / EVENTS_FILE if dataset.is_dir() else dataset
    return list(read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--window", type=float, default=75.0, help="learning window, seconds")
    parser.add_argument("--relearn", type=float, default=0.0, help="relearn interval, seconds")
    arguments = parser.parse_args()
    settings = LearningSettings(
        window_seconds=arguments.window, relearn_interval_seconds=arguments.relearn
    )
    learner = Learner(settings)
    detector = LearningDetector(learner)
    learning_seconds = train_seconds = 0.0
    learning_events = 0
    largest_checkpoint = 0
    for dataset in arguments.datasets:
        events = _events(dataset)
        alerts = {Phase.LEARNING: 0, Phase.ENABLED: 0}
        for number, event in enumerate(events):
            phase = learner.phase
            started = time.perf_counter()
            found = detector.on_event(event)
            spent = time.perf_counter() - started
            if learner.take_trained():
                train_seconds += spent
                status = learner.status()
                print(
                    f"  version {status.model_version} trained in {spent:.2f} s "
                    f"(threshold {status.threshold:.3f}; {status.threshold_source})"
                )
                assert learner.model is not None
                print(f"  bundle: {len(dump_bundle(learner.model)):,} bytes")
            elif phase is Phase.LEARNING:
                learning_seconds += spent
                learning_events += 1
            alerts[phase] += len(found)
            if number % 5000 == 0:
                largest_checkpoint = max(largest_checkpoint, len(dump_checkpoint(learner)))
        alerts[learner.phase] += len(detector.flush())
        print(
            f"{dataset}: {len(events):,} events; anomaly alerts while learning "
            f"{alerts[Phase.LEARNING]}, with the model {alerts[Phase.ENABLED]}"
        )
    model = learner.model
    if model is not None:
        window = model.metadata["datasets"][0]
        print(
            f"window {arguments.window:g} s: {window['events']:,} events, "
            f"{window['processes']:,} processes ({model.metadata['training_processes']:,} "
            f"training, {model.metadata['validation_processes']:,} held out), "
            f"{len(model.known):,} token counts, dropped {window['dropped'] or 'nothing'}"
        )
    if learning_events:
        print(
            f"learning: {learning_events / learning_seconds:,.0f} events/s "
            f"({1e6 * learning_seconds / learning_events:.1f} us/event, learner + detector)"
        )
    print(f"training: {train_seconds:.2f} s in all")
    print(f"largest checkpoint seen: {largest_checkpoint:,} bytes (gzip JSON)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
