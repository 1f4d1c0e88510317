"""The agent's status file: counters of every stage, their rates over the last interval,
and whether the sensor is blind. Written atomically by the agent, read by
``provarmor agent status``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from provarmor.model.errors import ConfigError

STATUS_FILE = "agent-status.json"


@dataclass(slots=True, kw_only=True)
class AgentStatus:
    pid: int
    sensor: str
    host_id: str
    started_at: float
    updated_at: float
    running: bool = True
    counters: dict[str, int] = field(default_factory=dict)
    """Stage-qualified totals: ``sensor.events``, ``sensor.lost``, ``queue.dropped`` ..."""
    rates: dict[str, float] = field(default_factory=dict)
    """Per-second rates of the counters over the last status interval."""
    blind: bool = False
    blind_reason: str = ""
    learning: dict[str, object] | None = None
    """Learning mode's state (:class:`~provarmor.detection.anomaly.learning.LearningStatus`
    and the model versions kept); ``None`` when this agent does not learn (it uploads to a
    manager, which learns, or writes a dataset)."""


def write_status(directory: Path, status: AgentStatus) -> None:
    path = directory / STATUS_FILE
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(_as_dict(status)))
    os.replace(temporary, path)


def _as_dict(status: AgentStatus) -> dict[str, object]:
    return {name: getattr(status, name) for name in AgentStatus.__dataclass_fields__}


def read_status(directory: Path) -> AgentStatus:
    path = directory / STATUS_FILE
    try:
        data = json.loads(path.read_text())
        return AgentStatus(**data)
    except FileNotFoundError:
        raise ConfigError(f"no agent status at {path} (is the agent running?)") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"unreadable agent status: {exc}", location=str(path)) from None


def rates(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, float]:
    if seconds <= 0:
        return {}
    return {key: (value - before.get(key, 0)) / seconds for key, value in after.items()}


def blindness(
    interval: dict[str, float], *, sensor_alive: bool, drop_ratio: float
) -> tuple[bool, str]:
    """Is the sensor blind over the last interval? (rates are per second)."""
    if not sensor_alive:
        return True, "the sensor stopped"
    lost = sum(value for key, value in interval.items() if key.endswith((".lost", ".dropped")))
    seen = interval.get("sensor.events", 0.0)
    if lost > 0 and lost > drop_ratio * (seen + lost):
        return True, f"{lost:.0f} events/s lost of {seen + lost:.0f}/s"
    return False, ""
