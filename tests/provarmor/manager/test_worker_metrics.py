"""A worker's Prometheus metrics: its batch counters and its checkpoint counters, read at
each scrape."""

from prometheus_client.parser import text_string_to_metric_families

from provarmor.manager.bus_worker import WorkerCounters
from provarmor.manager.ingest import CheckpointCounters
from provarmor.manager.worker_metrics import WorkerMetrics


def _samples(metrics: WorkerMetrics) -> dict[str, float]:
    families = text_string_to_metric_families(metrics.render().decode())
    return {sample.name: sample.value for family in families for sample in family.samples}


def test_the_counters_are_read_at_each_scrape():
    counters, checkpoints = WorkerCounters(), CheckpointCounters()
    metrics = WorkerMetrics(counters, checkpoints)
    assert _samples(metrics)["provarmor_worker_batches"] == 0
    counters.batches, counters.events, counters.retried = 3, 120, 1
    checkpoints.written, checkpoints.replayed, checkpoints.graph_writes = 2, 5, 2
    samples = _samples(metrics)
    assert samples["provarmor_worker_batches"] == 3
    assert samples["provarmor_worker_events"] == 120
    assert samples["provarmor_worker_retried"] == 1
    assert samples["provarmor_worker_checkpoints_written"] == 2
    assert samples["provarmor_worker_checkpoints_replayed"] == 5
    assert samples["provarmor_worker_checkpoints_graph_writes"] == 2
    assert WorkerMetrics(WorkerCounters(), CheckpointCounters()).registry is not metrics.registry
