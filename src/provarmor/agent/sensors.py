"""Which sensor the agent runs: the one the settings name, or for ``auto`` the first in
:data:`~provarmor.sources.registry.SENSORS` whose prerequisites hold. The sensors themselves
live in their source packages."""

from __future__ import annotations

import os

from provarmor.agent.settings import AUTO
from provarmor.sources.base import LiveSensor, SensorContext, SensorUnavailable
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
