import pytest

from provarmor.obs.metrics import Kind, Metric, Registry

DROPS = Metric("provarmor_agent_dropped_events_total", Kind.COUNTER, "Events lost.", ("reason",))
UP = Metric("provarmor_agent_up", Kind.GAUGE, "Sensor running.")


def test_counters_and_render():
    registry = Registry()
    registry.declare(DROPS)
    registry.declare(UP)
    registry.inc(DROPS, 3, "queue_full")
    registry.inc(DROPS, 2, 'kern"el')
    registry.set(UP, 1)
    text = registry.render()
    assert "# TYPE provarmor_agent_dropped_events_total counter" in text
    assert 'provarmor_agent_dropped_events_total{reason="queue_full"} 3' in text
    assert 'reason="kern\\"el"' in text
    assert "provarmor_agent_up 1" in text
    assert registry.get(DROPS, "queue_full") == 3
    assert registry.snapshot()['provarmor_agent_dropped_events_total{reason="queue_full"}'] == 3


def test_labels_must_match_declaration():
    registry = Registry()
    registry.declare(DROPS)
    with pytest.raises(ValueError, match="takes labels"):
        registry.inc(DROPS)
    with pytest.raises(ValueError, match="twice"):
        registry.declare(Metric(DROPS.name, Kind.GAUGE, "other"))
