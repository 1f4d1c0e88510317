import pytest

from provarmor.agent.status import AgentStatus, blindness, rates, read_status, write_status
from provarmor.model.errors import ConfigError


def test_write_and_read_round_trip(tmp_path):
    status = AgentStatus(pid=7, sensor="ebpf", host_id="h", started_at=1.0, updated_at=2.0)
    status.counters = {"sensor.events": 10}
    write_status(tmp_path, status)
    assert read_status(tmp_path) == status


def test_missing_or_bad_status_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="is the agent running"):
        read_status(tmp_path)
    (tmp_path / "agent-status.json").write_text("{")
    with pytest.raises(ConfigError, match="unreadable"):
        read_status(tmp_path)


def test_rates_are_per_second_deltas():
    assert rates({"a": 10}, {"a": 30, "b": 4}, 2.0) == {"a": 10.0, "b": 2.0}
    assert rates({}, {"a": 1}, 0) == {}


def test_blindness():
    assert blindness({}, sensor_alive=False, drop_ratio=0.01) == (True, "the sensor stopped")
    assert (
        blindness(
            {"sensor.events": 1000.0, "sensor.lost": 5.0}, sensor_alive=True, drop_ratio=0.01
        )[0]
        is False
    )
    blind, reason = blindness(
        {"sensor.events": 1000.0, "queue.dropped": 50.0}, sensor_alive=True, drop_ratio=0.01
    )
    assert blind
    assert "50 events/s lost" in reason
