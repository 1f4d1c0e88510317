import pytest

from provarmor.agent import sensors
from provarmor.agent.sensors import start_sensor
from provarmor.sources.base import SensorContext, SensorUnavailable
from provarmor.testing.sensors import FakeSensor


class Broken(FakeSensor):
    name = "broken"

    def start(self) -> None:
        raise SensorUnavailable("broken: no kernel support")


CONTEXT = SensorContext(exclude_pids=(1,), audit_backlog_limit=8192, ebpf_perf_rb_pages=64)


def test_auto_takes_the_first_sensor_that_starts(monkeypatch):
    monkeypatch.setattr(sensors.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        sensors, "SENSORS", {"ebpf": lambda c: Broken(), "audit": lambda c: FakeSensor()}
    )
    assert start_sensor("auto", CONTEXT).name == "fake"


def test_no_sensor_names_every_reason(monkeypatch):
    monkeypatch.setattr(sensors.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sensors, "SENSORS", {"ebpf": lambda c: Broken()})
    with pytest.raises(SensorUnavailable, match="broken: no kernel support") as info:
        start_sensor("auto", CONTEXT)
    assert "audit" not in str(info.value)
    with pytest.raises(SensorUnavailable, match="audit: not built"):
        start_sensor("audit", CONTEXT)


def test_root_is_required(monkeypatch):
    monkeypatch.setattr(sensors.os, "geteuid", lambda: 1000)
    with pytest.raises(SensorUnavailable, match="needs root"):
        start_sensor("ebpf", CONTEXT)
