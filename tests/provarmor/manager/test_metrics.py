"""The manager's Prometheus metrics: one registry per application, with the build info."""

from prometheus_client.parser import text_string_to_metric_families

from provarmor import __version__
from provarmor.manager.ingest import CheckpointCounters
from provarmor.manager.metrics import ManagerMetrics


def _samples(metrics: ManagerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_render_with_their_labels():
    metrics = ManagerMetrics()
    metrics.uploads.labels(result="accepted").inc()
    metrics.uploads.labels(result="duplicate").inc(2)
    metrics.events.inc(500)
    metrics.rejected.inc()
    metrics.alerts.inc(3)
    metrics.incidents.inc(4)
    metrics.latency.labels(method="POST", route="/api/v1/enroll", status="2xx").observe(0.02)
    samples = _samples(metrics)
    assert samples[("provarmor_manager_uploads_total", (("result", "accepted"),))] == 1
    assert samples[("provarmor_manager_uploads_total", (("result", "duplicate"),))] == 2
    assert samples[("provarmor_manager_events_total", ())] == 500
    assert samples[("provarmor_manager_events_rejected_total", ())] == 1
    assert samples[("provarmor_manager_alerts_total", ())] == 3
    assert samples[("provarmor_manager_incident_updates_total", ())] == 4
    labels = (("method", "POST"), ("route", "/api/v1/enroll"), ("status", "2xx"))
    assert samples[("provarmor_manager_request_seconds_count", labels)] == 1
    assert samples[("provarmor_manager_request_seconds_sum", labels)] == 0.02


def test_build_info_names_the_version():
    samples = _samples(ManagerMetrics())
    assert samples[("provarmor_build_info", (("version", __version__),))] == 1


def test_each_application_has_its_own_registry():
    first, second = ManagerMetrics(), ManagerMetrics()
    first.events.inc(7)
    assert first.registry is not second.registry
    assert _samples(first)[("provarmor_manager_events_total", ())] == 7
    assert _samples(second)[("provarmor_manager_events_total", ())] == 0
    assert b"# HELP provarmor_manager_events_total Events accepted from agents." in second.render()


def test_checkpoint_counters_are_read_at_each_scrape():
    metrics = ManagerMetrics()
    counters = CheckpointCounters()
    metrics.watch_checkpoints(counters)
    counters.written, counters.bytes, counters.restored, counters.rebuilt = 3, 4096, 1, 2
    counters.failed = 5
    samples = _samples(metrics)
    assert samples[("provarmor_manager_checkpoints_written", ())] == 3
    assert samples[("provarmor_manager_checkpoints_bytes", ())] == 4096
    assert samples[("provarmor_manager_checkpoints_restored", ())] == 1
    assert samples[("provarmor_manager_checkpoints_rebuilt", ())] == 2
    assert samples[("provarmor_manager_checkpoints_failed", ())] == 5
    counters.written += 1
    assert _samples(metrics)[("provarmor_manager_checkpoints_written", ())] == 4
