"""Learning mode: a host without a model learns its own, then keeps it current.

:class:`Learner` runs on the stream's own clock (the highest event timestamp seen), so a
replayed recording learns exactly as the live host did. From the host's first event it
gathers a :class:`~.baseline.Baseline` for ``window_seconds``; when the clock passes the
window's end it trains the per-executable model on the window's training processes,
calibrates its threshold on the window's held-out tail (:func:`~.train.train_counted`) and
enables it. A window with too few processes is extended by whole windows until it has
enough (the reason is in the status). While a model runs, the next baseline is gathered
beside it; every ``relearn_interval_seconds`` it becomes the next model version, so new
software stops looking new.

:class:`LearningDetector` is the Detector: silent while learning, the
:class:`~.detector.AnomalyDetector` once a model exists; the processes it alerts on are
left out of the baseline being gathered. Nothing here touches files: the caller archives
the models :meth:`Learner.take_trained` hands over and stores :func:`dump_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import gzip
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

from provarmor.detection.anomaly.baseline import Baseline, BaselineRecord
from provarmor.detection.anomaly.detector import AnomalyDetector
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import (
    AnomalySettings,
    LearningSettings,
    TrainingSettings,
)
from provarmor.detection.anomaly.train import train_counted
from provarmor.model.alert import Alert
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event
from provarmor.model.time_units import ns_to_seconds, seconds_to_ns

CHECKPOINT_VERSION = 1


class Phase(StrEnum):
    LEARNING = "learning"
    """No model yet: gathering the first baseline; the anomaly detector is silent."""
    ENABLED = "enabled"
    """A model runs (and the next baseline is gathered, when relearning is on)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LearningStatus:
    """What the console, the API and ``agent status`` show."""

    phase: Phase
    window_seconds: float
    """Length of the current window (the learning window, or the relearn interval)."""
    window_start_ns: int = 0
    window_end_ns: int = 0
    clock_ns: int = 0
    """The stream clock: the latest event time seen."""
    time_left_seconds: float = 0.0
    """Event time until the current window ends."""
    events: int = 0
    processes: int = 0
    """Events and processes of the current window."""
    waiting: str = ""
    """Why the window was extended (too few processes when it ended)."""
    model_version: int = 0
    trained_at_ns: int = 0
    """Event time the running model was trained at."""
    trained_wall: str = ""
    """Wall-clock time (ISO 8601) the running model was trained at."""
    threshold: float = 0.0
    threshold_source: str = ""
    learned_window: tuple[int, int] = (0, 0)
    """The event-time window the running model learned from."""
    dropped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


class Learner:
    """The learning state machine of one host (see the module docstring)."""

    def __init__(
        self,
        settings: LearningSettings,
        *,
        training: TrainingSettings | None = None,
        model: AnomalyModel | None = None,
        version: int = 0,
    ) -> None:
        self.settings = settings
        self.training = training or TrainingSettings()
        self.model = model
        self.version = version
        self.clock = 0
        self.baseline: Baseline | None = None
        self.waiting = ""
        self.total_events = 0
        """Events observed over all windows (to count what a crash lost)."""
        self.dropped: dict[str, int] = {}
        """Losses outside a window's baseline (``unlearned_events`` after a crash)."""
        self._trained: list[AnomalyModel] = []

    @property
    def phase(self) -> Phase:
        return Phase.LEARNING if self.model is None else Phase.ENABLED

    def span_ns(self) -> int:
        if self.model is None:
            return seconds_to_ns(self.settings.window_seconds, what="learning.window_seconds")
        return seconds_to_ns(
            self.settings.relearn_interval_seconds, what="learning.relearn_interval_seconds"
        )

    def observe(self, event: Event) -> AnomalyModel | None:
        """Feed one event; returns a model when this event's time closed a window and it was
        trained (the event then belongs to the next window)."""
        self.total_events += 1
        if event.timestamp > self.clock:
            self.clock = event.timestamp
        trained = None
        baseline = self.baseline
        if baseline is not None and self.clock >= baseline.end:
            self.waiting = baseline.shortfall()
            if self.waiting:
                baseline.extend(self.clock)
            else:
                trained = self._train(baseline)
                baseline = self.baseline
        if baseline is None:
            span = self.span_ns()
            if span <= 0:
                return trained
            baseline = self.baseline = Baseline(
                start=self.clock, end=self.clock + span, settings=self.settings
            )
        baseline.observe(event)
        return trained

    def exclude(self, entity_id: str) -> None:
        """Leave an alerted process (and its descendants) out of the baseline."""
        if self.baseline is not None:
            self.baseline.exclude(entity_id)

    def take_trained(self) -> list[AnomalyModel]:
        """The models trained since the last call (the caller archives them)."""
        trained, self._trained = self._trained, []
        return trained

    def adopt(self, model: AnomalyModel, version: int) -> None:
        """Run an archived model (newer than the checkpoint, after a crash)."""
        self.model, self.version = model, version

    def _train(self, baseline: Baseline) -> AnomalyModel:
        started = time.monotonic()
        data = baseline.close()
        self.version += 1
        learned = [baseline.start, max(baseline.end, baseline.last)]
        window = {
            "name": f"learned window {self.version}",
            "kind": "learning window",
            "role": "training and validation (time split)",
            "window_start_ns": learned[0],
            "window_end_ns": learned[1],
            "validation_from_ns": baseline.cut,
            "events": baseline.events,
            "processes": baseline.processes,
            "dropped": dict(baseline.dropped),
        }
        trained = train_counted(
            data.counts,
            data.validation,
            settings=self.training,
            datasets=[window],
            started=started,
        )
        learning = {"model_version": self.version, "learned_window": learned}
        metadata = {**trained.metadata, **learning, "trained_at_ns": self.clock}
        model = self.model = dataclasses.replace(trained, metadata=metadata)
        self._trained.append(model)
        follower = None
        span = self.span_ns()
        if span > 0:
            follower = Baseline(start=self.clock, end=self.clock + span, settings=self.settings)
            follower.carry_exclusions(baseline)
        self.baseline = follower
        self.waiting = ""
        return model

    def status(self) -> LearningStatus:
        baseline = self.baseline
        model = self.model
        metadata = model.metadata if model is not None else {}
        learned = metadata.get("learned_window") or (0, 0)
        dropped = dict(self.dropped)
        if baseline is not None:
            for key, value in baseline.dropped.items():
                dropped[key] = dropped.get(key, 0) + value
        return LearningStatus(
            phase=self.phase,
            window_seconds=ns_to_seconds(self.span_ns()),
            window_start_ns=baseline.start if baseline is not None else 0,
            window_end_ns=baseline.end if baseline is not None else 0,
            clock_ns=self.clock,
            time_left_seconds=ns_to_seconds(max(baseline.end - self.clock, 0)) if baseline else 0.0,
            events=baseline.events if baseline is not None else 0,
            processes=baseline.processes if baseline is not None else 0,
            waiting=self.waiting,
            model_version=self.version if model is not None else 0,
            trained_at_ns=int(metadata.get("trained_at_ns", 0)),
            trained_wall=str(metadata.get("created", "")),
            threshold=model.threshold if model is not None else 0.0,
            threshold_source=_threshold_source(metadata) if model is not None else "",
            learned_window=(int(learned[0]), int(learned[1])),
            dropped=dropped,
        )


def _threshold_source(metadata: dict[str, Any]) -> str:
    method = str(metadata.get("threshold_method", "given with the model"))
    if "learned_window" in metadata:
        return f"learned on this host: {method}"
    return f"operator's model: {method}"


class LearningDetector:
    """The anomaly Detector of a learning host (silent until its first model)."""

    name = "anomaly"

    def __init__(self, learner: Learner, settings: AnomalySettings | None = None) -> None:
        self.learner = learner
        self.settings = settings or AnomalySettings()
        self.active: AnomalyDetector | None = None
        if learner.model is not None:
            self.active = AnomalyDetector(learner.model, self.settings)

    def on_event(self, event: Event) -> Sequence[Alert]:
        model = self.learner.observe(event)
        if model is not None:
            if self.active is None:
                self.active = AnomalyDetector(model, self.settings)
            else:
                self.active.use_model(model)
        if self.active is None:
            return ()
        alerts = self.active.on_event(event)
        for alert in alerts:
            for entity_id in alert.process_entity_ids:
                self.learner.exclude(entity_id)
        return alerts

    def flush(self) -> Sequence[Alert]:
        return self.active.flush() if self.active is not None else ()


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """The learning state of one host (``format_version`` 1; gzip-compressed JSON)."""

    format_version: int
    version: int
    clock: int
    waiting: str
    total_events: int
    dropped: dict[str, int]
    baseline: BaselineRecord | None


class _Version(msgspec.Struct):
    format_version: int


def dump_checkpoint(learner: Learner) -> bytes:
    """The learner's state (not its model: the archive holds that)."""
    baseline = learner.baseline
    checkpoint = Checkpoint(
        format_version=CHECKPOINT_VERSION,
        version=learner.version,
        clock=learner.clock,
        waiting=learner.waiting,
        total_events=learner.total_events,
        dropped=learner.dropped,
        baseline=baseline.to_record() if baseline is not None else None,
    )
    return gzip.compress(msgspec.json.encode(checkpoint), compresslevel=1, mtime=0)


def parse_checkpoint(data: bytes, *, location: str) -> Checkpoint:
    """Decode a checkpoint; anything wrong is a :class:`ConfigError` naming ``location``."""
    try:
        text = gzip.decompress(data)
        version = msgspec.json.decode(text, type=_Version).format_version
        if version != CHECKPOINT_VERSION:
            raise ConfigError(
                f"learning checkpoint format {version} is not supported (this build reads "
                f"{CHECKPOINT_VERSION})",
                location=location,
            )
        return msgspec.json.decode(text, type=Checkpoint)
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"learning checkpoint is damaged: {exc}", location=location) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"learning checkpoint is invalid: {exc}", location=location) from None


def restore_learner(
    checkpoint: Checkpoint,
    *,
    settings: LearningSettings,
    training: TrainingSettings | None = None,
    model: AnomalyModel | None,
) -> Learner:
    """A learner continuing from ``checkpoint`` with the archive's latest ``model``."""
    learner = Learner(settings, training=training, model=model, version=checkpoint.version)
    learner.clock = checkpoint.clock
    learner.waiting = checkpoint.waiting
    learner.total_events = checkpoint.total_events
    learner.dropped = dict(checkpoint.dropped)
    if checkpoint.baseline is not None:
        learner.baseline = Baseline.from_record(checkpoint.baseline, settings=settings)
    return learner
