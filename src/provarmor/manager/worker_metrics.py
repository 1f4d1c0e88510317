"""A bus worker's Prometheus metrics (``provarmor worker --metrics-listen``): its batch
counters and its ingestor's checkpoint counters, read at each scrape, in a registry of its
own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from provarmor.manager.bus_worker import WorkerCounters
from provarmor.manager.ingest import CheckpointCounters
from provarmor.manager.metrics import watch_checkpoints


class WorkerMetrics:
    def __init__(self, counters: WorkerCounters, checkpoints: CheckpointCounters) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        gauges = (
            ("batches", "Batches analysed and stored.", lambda: counters.batches),
            ("events", "Events of the batches stored.", lambda: counters.events),
            ("duplicates", "Batches the findings store already had.", lambda: counters.duplicates),
            (
                "rejected",
                "Messages terminated: they can never be stored.",
                lambda: counters.rejected,
            ),
            ("retried", "Batches whose store failed (delivered again).", lambda: counters.retried),
            (
                "unsettled",
                "Acknowledgements the broker did not take (the batch comes again).",
                lambda: counters.unsettled,
            ),
            (
                "sequence_gaps",
                "Batches that came after a gap in their agent's sequence (batches in between "
                "never reached the worker: the stream dropped them when full).",
                lambda: counters.sequence_gaps,
            ),
            (
                "filled",
                "Batches delivered out of order (after a kill or a broker restart) that were "
                "taken from the stream before the batch that followed them.",
                lambda: counters.filled,
            ),
            (
                "events_lost",
                "Events of the agents' batches lost in those gaps (spool sequence numbers).",
                lambda: counters.events_lost,
            ),
        )
        for name, text, read in gauges:
            gauge = Gauge(f"provarmor_worker_{name}", text, registry=self.registry)
            gauge.set_function(read)
        watch_checkpoints(self.registry, checkpoints, prefix="provarmor_worker_checkpoints")

    def render(self) -> bytes:
        return generate_latest(self.registry)
