import pytest

from provarmor.agent import sensors
from provarmor.agent.sensors import SensorContext, SensorUnavailable, start_sensor
from provarmor.agent.settings import AgentSettings, SensorChoice
from provarmor.testing.sensors import FakeSensor


class Broken(FakeSensor):
    name = "broken"

    def start(self) -> None:
        raise SensorUnavailable("broken: no kernel support")


def context(choice):
    return SensorContext(settings=AgentSettings(sensor=choice), exclude_pids=(1,))


def test_auto_takes_the_first_sensor_that_starts(monkeypatch):
    monkeypatch.setattr(sensors.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        sensors, "SENSORS", {"ebpf": lambda c: Broken(), "audit": lambda c: FakeSensor()}
    )
    assert start_sensor(context(SensorChoice.AUTO)).name == "fake"


def test_no_sensor_names_every_reason(monkeypatch):
    monkeypatch.setattr(sensors.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sensors, "SENSORS", {"ebpf": lambda c: Broken()})
    with pytest.raises(SensorUnavailable, match="broken: no kernel support") as info:
        start_sensor(context(SensorChoice.AUTO))
    assert "audit" not in str(info.value)
    with pytest.raises(SensorUnavailable, match="audit: not built"):
        start_sensor(context(SensorChoice.AUDIT))


def test_root_is_required(monkeypatch):
    monkeypatch.setattr(sensors.os, "geteuid", lambda: 1000)
    with pytest.raises(SensorUnavailable, match="needs root"):
        start_sensor(context(SensorChoice.EBPF))


def test_both_backends_are_registered_in_auto_order():
    assert list(sensors.SENSORS) == ["ebpf", "audit"]
