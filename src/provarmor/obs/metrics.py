"""Counters and gauges, declared once with their help text, rendered for Prometheus.

Names follow ``provarmor_<subsystem>_<what>_<unit|total>``. A registry is an object passed
to whoever records (no module-level state); the agent and the manager each own one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


@dataclass(slots=True)
class Registry:
    """Holds metric values by (name, label values). Thread-safe for increments."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    values: dict[tuple[str, tuple[str, ...]], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def declare(self, metric: Metric) -> Metric:
        existing = self.metrics.get(metric.name)
        if existing is not None and existing != metric:
            raise ValueError(f"metric {metric.name} declared twice with different shapes")
        self.metrics[metric.name] = metric
        if not metric.labels:
            self.values.setdefault((metric.name, ()), 0.0)
        return metric

    def inc(self, metric: Metric, amount: float = 1.0, *labels: str) -> None:
        key = (metric.name, self._labels(metric, labels))
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, metric: Metric, value: float, *labels: str) -> None:
        key = (metric.name, self._labels(metric, labels))
        with self._lock:
            self.values[key] = value

    def get(self, metric: Metric, *labels: str) -> float:
        return self.values.get((metric.name, self._labels(metric, labels)), 0.0)

    @staticmethod
    def _labels(metric: Metric, labels: tuple[str, ...]) -> tuple[str, ...]:
        if len(labels) != len(metric.labels):
            raise ValueError(f"{metric.name} takes labels {metric.labels}, got {labels}")
        return labels

    def snapshot(self) -> dict[str, float]:
        """Flat ``name{label="v"}`` -> value, for status files and tests."""
        with self._lock:
            items = list(self.values.items())
        return {_series(self.metrics[name], labels): value for (name, labels), value in items}

    def render(self) -> str:
        """The Prometheus text exposition format."""
        with self._lock:
            items = sorted(self.values.items())
        lines: list[str] = []
        declared: set[str] = set()
        for (name, labels), value in items:
            metric = self.metrics[name]
            if name not in declared:
                declared.add(name)
                lines.append(f"# HELP {name} {metric.help}")
                lines.append(f"# TYPE {name} {metric.kind.value}")
            number = repr(value) if value != int(value) else str(int(value))
            lines.append(f"{_series(metric, labels)} {number}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(metric: Metric, labels: tuple[str, ...]) -> str:
    if not labels:
        return metric.name
    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(metric.labels, labels, strict=True))
    return f"{metric.name}{{{pairs}}}"
