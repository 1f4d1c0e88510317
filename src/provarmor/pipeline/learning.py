"""One host's learning mode, wired to its model archive: the manager runs one per host, the
standalone agent one for its own host.

:class:`HostLearning` restores the learner from the archive (the newest model version and
the checkpoint), hands its :class:`~provarmor.detection.anomaly.learning.LearningDetector`
to the analysis, and after each batch archives the versions the learner trained and
checkpoints its state every ``checkpoint_seconds`` (wall clock) and at once after a new
version. A crash loses at most the baseline of the events since the last checkpoint; the
caller says how many events the host has on record (:meth:`HostLearning.note_recorded`),
and what the checkpoint did not see is counted as ``unlearned_events``. An unreadable
checkpoint is set aside (``learning.json.gz.unreadable``), logged with its path and the
reason, counted, and learning starts again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from provarmor.detection.anomaly.learning import (
    Learner,
    LearningDetector,
    LearningStatus,
    dump_checkpoint,
    parse_checkpoint,
    restore_learner,
)
from provarmor.detection.anomaly.settings import (
    AnomalySettings,
    LearningSettings,
    TrainingSettings,
)
from provarmor.model.errors import ConfigError
from provarmor.pipeline.model_archive import ModelArchive

log = logging.getLogger(__name__)
STATUS_FILE = "status.json"
"""The last status, beside the checkpoint, for readers that do not hold the learner."""


class HostLearning:
    """Learning mode of one host over its archive directory."""

    def __init__(
        self,
        directory: Path,
        *,
        settings: LearningSettings,
        anomaly: AnomalySettings | None = None,
        training: TrainingSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.archive = ModelArchive(directory, keep=settings.keep_versions)
        self._clock = clock
        self.restored = False
        """Whether a checkpoint was restored (else learning starts afresh)."""
        self.learner = self._restore(training)
        self.detector = LearningDetector(self.learner, anomaly)
        self._last_checkpoint = clock()
        self.checkpoints = 0
        """Checkpoints written by this instance."""
        self.versions = self.archive.versions()
        self.current: dict[str, object] = self._status_dict()
        """The status after the last batch (read without the host's lock)."""

    def _restore(self, training: TrainingSettings | None) -> Learner:
        latest = self.archive.latest()
        version, model = latest if latest is not None else (0, None)
        data = self.archive.read_checkpoint()
        if data is None:
            return Learner(self.settings, training=training, model=model, version=version)
        try:
            checkpoint = parse_checkpoint(data, location=str(self.archive.checkpoint_path))
        except ConfigError as exc:
            moved = self.archive.set_aside_checkpoint()
            log.warning("learning starts again: %s (set aside as %s)", exc, moved)
            learner = Learner(self.settings, training=training, model=model, version=version)
            learner.dropped["unreadable_checkpoints"] = 1
            return learner
        self.restored = True
        learner = restore_learner(
            checkpoint,
            settings=self.settings,
            training=training,
            model=model if version >= checkpoint.version else None,
        )
        if model is not None and version > checkpoint.version:
            learner.adopt(model, version)  # archived after the last checkpoint
        return learner

    def note_recorded(self, events: int) -> None:
        """The host has ``events`` on record (stored before this learner runs). Restored:
        those the checkpoint never saw (acknowledged after it, before a crash) are counted
        lost. Fresh: the count is aligned with the record and checkpointed at once, so a
        crash before the first regular checkpoint is counted too."""
        learner = self.learner
        if not self.restored:
            learner.total_events = events
            self.checkpoint()
            self.restored = True
            return
        missing = events - learner.total_events
        if missing > 0:
            learner.dropped["unlearned_events"] = (
                learner.dropped.get("unlearned_events", 0) + missing
            )
            learner.total_events = events

    def after_batch(self) -> list[int]:
        """Archive new versions, checkpoint when due; returns the versions archived."""
        trained = self.learner.take_trained()
        archived = []
        for model in trained:
            version = int(model.metadata["model_version"])
            self.archive.save(model, version)
            archived.append(version)
            self.versions = self.archive.versions()
            log.info("anomaly model version %d learned (threshold %.3f)", version, model.threshold)
        self.current = self._status_dict()
        if trained or self._clock() - self._last_checkpoint >= self.settings.checkpoint_seconds:
            self.checkpoint()
        return archived

    def checkpoint(self) -> None:
        """Store the learner's state and its status (each replaced atomically)."""
        self.archive.write_checkpoint(dump_checkpoint(self.learner))
        path = self.archive.directory / STATUS_FILE
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.current))
        os.replace(temporary, path)
        self._last_checkpoint = self._clock()
        self.checkpoints += 1

    def status(self) -> LearningStatus:
        """The learner's status, with the versions the archive holds."""
        status = self.learner.status()
        if self.archive.pruned:
            dropped = {**status.dropped, "pruned_versions": self.archive.pruned}
            status = dataclasses.replace(status, dropped=dropped)
        return status

    def _status_dict(self) -> dict[str, object]:
        return {**self.status().to_dict(), "versions": self.versions}

    def close(self) -> None:
        self.after_batch()
        self.checkpoint()
