"""Which sensor the agent runs: the one the settings name, or for ``auto`` the first in
:data:`~provarmor.sources.registry.SENSORS` whose prerequisites hold. The sensors themselves
live in their source packages. The host log source (journald or a syslog file) runs beside
it when the settings ask for one (:mod:`provarmor.agent.host_logs`)."""

from __future__ import annotations

import os

from provarmor.agent.host_logs import WithHostLogs, start_host_logs
from provarmor.agent.settings import AUTO, AgentSettings
from provarmor.model.errors import ConfigError
from provarmor.sources.base import HostContext, LiveSensor, SensorContext, SensorUnavailable
from provarmor.sources.procfs import read_host_identity
from provarmor.sources.registry import SENSORS


def start_sensor(choice: str, context: SensorContext) -> LiveSensor:
    """Start the chosen sensor; for ``auto`` the first that starts (the reasons the others
    could not are in the error when none can)."""
    names = list(SENSORS) if choice == AUTO else [choice]
    if os.geteuid() != 0:
        raise SensorUnavailable("the agent needs root (it reads the kernel's events)")
    reasons = []
    for name in names:
        factory = SENSORS.get(name)
        if factory is None:
            reasons.append(f"{name}: not built into this agent")
            continue
        sensor = factory(context)
        try:
            sensor.start()
        except SensorUnavailable as exc:
            reasons.append(str(exc))
            continue
        return sensor
    raise SensorUnavailable("no sensor could start: " + "; ".join(reasons))


def start_sensors(settings: AgentSettings, context: SensorContext) -> LiveSensor:
    """The sensor the settings name, with the host log source beside it when they ask."""
    sensor = start_sensor(settings.sensor, context)
    identity = read_host_identity()
    host = HostContext(id=identity.id, name=identity.name, boot_id=identity.boot_id)
    try:
        logs = start_host_logs(settings, host=host)
    except ConfigError:
        sensor.stop()
        raise
    if logs is None:
        return sensor
    combined = WithHostLogs(sensor, logs)
    combined.start()
    return combined
