"""The manager's Prometheus metrics, in a registry of its own per application (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from provarmor import __version__
from provarmor.manager.ingest import CheckpointCounters


class ManagerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.uploads = Counter(
            "provarmor_manager_uploads_total",
            "Batches uploaded by agents, by result.",
            ["result"],
            registry=registry,
        )
        self.events = Counter(
            "provarmor_manager_events_total", "Events accepted from agents.", registry=registry
        )
        self.rejected = Counter(
            "provarmor_manager_events_rejected_total",
            "Batches refused because an event did not decode or validate.",
            registry=registry,
        )
        self.alerts = Counter(
            "provarmor_manager_alerts_total", "Alerts raised on uploads.", registry=registry
        )
        self.incidents = Counter(
            "provarmor_manager_incident_updates_total",
            "Incident versions created or updated by uploads.",
            registry=registry,
        )
        self.unwritten = Counter(
            "provarmor_manager_output_failures_total",
            "Alerts and incident versions an output (alerts_out, incidents_out) failed to "
            "write; they are in the findings store all the same.",
            registry=registry,
        )
        self.commands = Counter(
            "provarmor_manager_commands_total",
            "Response commands by what became of them (queued, rate_limited, sent and "
            "send_failed on the bus, delivered, redelivered, expired, timed_out, result).",
            ["event"],
            registry=registry,
        )
        self.retention_deleted = Counter(
            "provarmor_retention_deleted_total",
            "Rows retention deleted, by kind (events, events_for_size, alerts, incidents, "
            "graph_edges, graph_events, graph_nodes, graph_gaps).",
            ["kind"],
            registry=registry,
        )
        self.retention_reclaimed = Counter(
            "provarmor_retention_reclaimed_bytes_total",
            "Bytes retention gave back to the file system (SQLite files shrunk).",
            registry=registry,
        )
        self.retention_runs = Counter(
            "provarmor_retention_runs_total",
            "Retention passes, by result (ok, failed).",
            ["result"],
            registry=registry,
        )
        self.retention_last_run = Gauge(
            "provarmor_retention_last_run_timestamp_seconds",
            "When the last retention pass started (Unix time).",
            registry=registry,
        )
        self.retention_duration = Gauge(
            "provarmor_retention_last_run_seconds",
            "How long the last retention pass took.",
            registry=registry,
        )
        self.retention_hold = Gauge(
            "provarmor_retention_longest_hold_seconds",
            "The longest one batch of the last retention pass held a store (an upload to it "
            "waited at most this long).",
            registry=registry,
        )
        self.findings_bytes = Gauge(
            "provarmor_findings_store_bytes",
            "Bytes the findings store took after the last retention pass.",
            registry=registry,
        )
        self.latency = Histogram(
            "provarmor_manager_request_seconds",
            "API request latency by route and status class.",
            ["method", "route", "status"],
            registry=registry,
        )
        build = Gauge(
            "provarmor_build_info",
            "Always 1; the version as a label.",
            ["version"],
            registry=registry,
        )
        build.labels(version=__version__).set(1)

    def watch_checkpoints(self, counters: CheckpointCounters) -> None:
        """Report the ingestor's checkpoint counters (read at each scrape)."""
        watch_checkpoints(self.registry, counters, prefix="provarmor_manager_checkpoints")

    def render(self) -> bytes:
        return generate_latest(self.registry)


def watch_checkpoints(
    registry: CollectorRegistry, counters: CheckpointCounters, *, prefix: str
) -> None:
    """Gauges ``<prefix>_<counter>`` that read an ingestor's checkpoint counters at each
    scrape (the manager's and a worker's)."""
    gauges = (
        ("written", "Host analysis checkpoints written.", lambda: counters.written),
        ("bytes", "Bytes of the checkpoints written.", lambda: counters.bytes),
        ("seconds", "CPU seconds spent making checkpoints.", lambda: counters.seconds),
        ("failed", "Checkpoints that could not be made.", lambda: counters.failed),
        ("restored", "Host analyses restored from their checkpoint.", lambda: counters.restored),
        (
            "rebuilt",
            "Host analyses rebuilt from their graph: no usable checkpoint (the log says why).",
            lambda: counters.rebuilt,
        ),
        (
            "replayed",
            "Batches analysed again from the replay source onto a restored checkpoint.",
            lambda: counters.replayed,
        ),
        (
            "graph_writes",
            "Flushes of a host's pending graph writes after its checkpoint.",
            lambda: counters.graph_writes,
        ),
        (
            "graph_failed",
            "Graph flushes that failed (kept pending for the next checkpoint).",
            lambda: counters.graph_failed,
        ),
    )
    for name, text, read in gauges:
        gauge = Gauge(f"{prefix}_{name}", text, registry=registry)
        gauge.set_function(read)
