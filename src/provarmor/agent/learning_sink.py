"""The standalone agent's learning-mode sink (:mod:`provarmor.pipeline.learning`): it
learns this host's baseline, then runs the anomaly model on it and appends its alerts (ECS)
to the agent's alert file. Its spool position is stored with each checkpoint; a crash loses
at most ``learning.checkpoint_seconds`` of baseline (not counted: the spool has already
acknowledged those events for this sink).

Imported only when learning is on: training needs numpy, which the agent's other paths do
not load.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from provarmor.agent.sinks import decode_position, encode_position
from provarmor.agent.spool import SpoolPosition
from provarmor.model.event import Event
from provarmor.outputs.alert_formats import ecs_alert
from provarmor.pipeline.config import AnalysisConfig
from provarmor.pipeline.learning import HostLearning


class LearningSink:
    """Learning mode on the agent's own host; anomaly alerts go to ``alerts``."""

    name = "learning"
    POSITION_FILE = "position.json"

    def __init__(
        self,
        directory: Path,
        *,
        config: AnalysisConfig,
        alerts: Path,
    ) -> None:
        self.learning = HostLearning(directory, settings=config.learning, anomaly=config.anomaly)
        self.alerts = alerts
        self._sidecar = directory / self.POSITION_FILE
        self._position: SpoolPosition | None = None
        self._saved: SpoolPosition | None = None
        if self._sidecar.exists():
            self._saved = decode_position(self._sidecar.read_text(), location=str(self._sidecar))
            self._position = self._saved

    def committed(self) -> SpoolPosition | None:
        return self._saved

    def write(self, events: list[Event], position: SpoolPosition) -> None:
        detector = self.learning.detector
        found = [alert for event in events for alert in detector.on_event(event)]
        if found:
            with self.alerts.open("ab") as handle:
                for alert in found:
                    handle.write(msgspec.json.encode(ecs_alert(alert)) + b"\n")
        self._position = position
        checkpoints = self.learning.checkpoints
        self.learning.after_batch()
        if self.learning.checkpoints != checkpoints:
            self._save_position()

    def _save_position(self) -> None:
        if self._position is None:
            return
        temporary = self._sidecar.with_name(self._sidecar.name + ".tmp")
        temporary.write_text(encode_position(self._position))
        os.replace(temporary, self._sidecar)
        self._saved = self._position

    def close(self) -> None:
        self.learning.close()
        self._save_position()
