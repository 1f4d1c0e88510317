"""Settings of the detection layer."""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.model.setting import setting


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectionSettings:
    dedup_window_seconds: float = setting(
        60.0,
        "Repeated alerts of one rule about the same process and object within this window "
        "become one alert with a count (0: no merging).",
    )
