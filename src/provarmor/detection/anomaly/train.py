"""Training on benign processes only: per-executable token counts, surprises, calibration.

Counts come from the TRAINING processes' complete profiles; the threshold is a quantile of the
scores of the distinct behaviours of the VALIDATION processes (profiles training never counted),
each process scored at its worst moment over its history, as online scoring sees it, then
raised by a margin. Nothing here reads
labels; callers hand over benign profiles only.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from provarmor.detection.anomaly.profile import ATTRIBUTES, Profile
from provarmor.detection.anomaly.scorer import AnomalyModel, Scorer, escape_key, known_key
from provarmor.detection.anomaly.settings import TrainingSettings
from provarmor.model.errors import ConfigError

MIN_TRAINING_PROCESSES = 20
MIN_VALIDATION_PROCESSES = 10
MIN_THRESHOLD = 1.0
REPORTED_QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingData:
    """Benign training and validation processes, and where they came from."""

    training: Sequence[Sequence[Profile]]
    validation: Sequence[Sequence[Profile]]
    """Per process, its profile history (:func:`~.profile.build_histories`)."""
    datasets: list[dict[str, Any]] = field(default_factory=list)
    """Name, kind, role, sha256 digest and counts of each input, for the metadata."""


@dataclass(slots=True)
class TokenCounts:
    """What the training processes showed, counted once per process."""

    processes: int = 0
    executables: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)
    document_frequency: Counter[str] = field(default_factory=Counter)

    def add(self, profile: Profile, *, max_keys: int = 0) -> int:
        """Count one process's complete profile. With ``max_keys``, a token that would make
        :attr:`known` hold more keys is left out; returns how many were left out."""
        self.processes += 1
        keys = {profile.exe, profile.context}
        for key in keys:
            self.executables[key] += 1
        left_out = 0
        known = self.known
        for attribute in ATTRIBUTES[1:]:
            for token in profile.tokens[attribute]:
                self.document_frequency[f"{attribute} {token}"] += 1
                for key in keys:
                    name = known_key(key, attribute, token)
                    if max_keys and name not in known and len(known) >= max_keys:
                        left_out += 1
                        continue
                    known[name] += 1
        return left_out


def split_by_time(
    histories: Sequence[Sequence[Profile]], fraction: float
) -> tuple[list[Sequence[Profile]], list[Sequence[Profile]]]:
    """(earlier, later): the latest ``fraction`` of processes by first activity are held out."""
    ordered = sorted(
        histories, key=lambda history: (history[0].first_timestamp, history[0].entity_id)
    )
    cut = len(ordered) - round(len(ordered) * fraction)
    return ordered[:cut], ordered[cut:]


def count_tokens(profiles: Sequence[Profile]) -> TokenCounts:
    """Per executable and overall, how many processes showed each token."""
    counts = TokenCounts()
    for profile in profiles:
        counts.add(profile)
    return counts


def surprise_of_new(one_offs: int, processes: int) -> float:
    """-log of the Good-Turing chance that the next process shows something new."""
    return -math.log((one_offs + 1.0) / (processes + 2.0))


def fit_counts(counts: TokenCounts, settings: TrainingSettings) -> AnomalyModel:
    """The uncalibrated model (threshold 1) of the training counts."""
    one_offs: Counter[str] = Counter()
    for key, count in counts.known.items():
        if count == 1:
            exe, attribute, _ = key.split("\x1f", 2)
            one_offs[escape_key(exe, attribute)] += 1
    escape = {}
    for exe, runs in counts.executables.items():
        for attribute in ATTRIBUTES[1:]:
            key = escape_key(exe, attribute)
            escape[key] = surprise_of_new(one_offs[key], runs)
    global_one_offs: Counter[str] = Counter()
    for key, count in counts.document_frequency.items():
        if count == 1:
            global_one_offs[key.split(" ", 1)[0]] += 1
    exe_one_offs = sum(
        1 for exe, runs in counts.executables.items() if runs == 1 and "\x1e" not in exe
    )
    return AnomalyModel(
        processes=counts.processes,
        executables=dict(counts.executables),
        known=dict(counts.known),
        document_frequency=dict(counts.document_frequency),
        escape=escape,
        global_escape={
            attribute: surprise_of_new(global_one_offs[attribute], counts.processes)
            for attribute in ATTRIBUTES[1:]
        },
        new_executable=surprise_of_new(exe_one_offs, counts.processes),
        global_weight=settings.global_weight,
        top_tokens=settings.top_tokens,
        threshold=1.0,
    )


def train_model(data: TrainingData, settings: TrainingSettings) -> AnomalyModel:
    """Count the training processes and calibrate the threshold on the validation ones."""
    started = time.monotonic()
    counts = count_tokens([history[-1] for history in data.training])
    return train_counted(
        counts,
        data.validation,
        settings=settings,
        datasets=data.datasets,
        started=started,
    )


def train_counted(
    counts: TokenCounts,
    validation: Sequence[Sequence[Profile]],
    *,
    settings: TrainingSettings,
    datasets: list[dict[str, Any]],
    started: float,
) -> AnomalyModel:
    """The model of training counts gathered already (by :func:`train_model` or a streaming
    baseline), its threshold calibrated on the validation processes' histories.
    ``started`` (``time.monotonic()``) is when the caller began, for the metadata."""
    if counts.processes < MIN_TRAINING_PROCESSES:
        raise ConfigError(f"too few training processes: {counts.processes}")
    if len(validation) < MIN_VALIDATION_PROCESSES:
        raise ConfigError(f"too few validation processes: {len(validation)}")
    draft = fit_counts(counts, settings)
    validation_scores = behaviour_scores(Scorer(draft), validation)
    quantile = float(np.quantile(validation_scores, settings.threshold_quantile))
    threshold = max(quantile * settings.threshold_margin, MIN_THRESHOLD)
    metadata = _metadata(
        datasets,
        settings=settings,
        model=draft,
        processes=(counts.processes, len(validation)),
        threshold=threshold,
        validation_scores=validation_scores,
        seconds=time.monotonic() - started,
    )
    return replace(draft, threshold=threshold, metadata=metadata)


def process_scores(
    scorer: Scorer, histories: Sequence[Sequence[Profile]]
) -> npt.NDArray[np.float64]:
    """Each process's highest score over its history (what online scoring saw)."""
    scores = [_worst(scorer, history)[0] for history in histories]
    return np.array(scores, dtype=np.float64)


def behaviour_scores(
    scorer: Scorer, histories: Sequence[Sequence[Profile]]
) -> npt.NDArray[np.float64]:
    """The highest score of each distinct behaviour (signature) among the processes: the
    detector alerts once per signature, so a benign loop repeating one novelty a hundred times
    is one candidate false alert, not a hundred."""
    best: dict[str, float] = {}
    for history in histories:
        score, signature = _worst(scorer, history)
        best[signature] = max(score, best.get(signature, 0.0))
    return np.array(list(best.values()), dtype=np.float64)


def _worst(scorer: Scorer, history: Sequence[Profile]) -> tuple[float, str]:
    """A process's highest score over its history, and that score's signature."""
    top, signature = -1.0, ""
    for profile in history:
        profile.reset_scoring()
        scored = scorer.score_one(profile)
        if scored.score > top:
            top = scored.score
            signature = scored.signature(profile, tokens=scorer.model.top_tokens)
    return top, signature


def _metadata(  # noqa: PLR0913  (everything the bundle records about one training run)
    datasets: list[dict[str, Any]],
    *,
    settings: TrainingSettings,
    model: AnomalyModel,
    processes: tuple[int, int],
    threshold: float,
    validation_scores: npt.NDArray[np.float64],
    seconds: float,
) -> dict[str, Any]:
    quantiles = {
        f"q{quantile:g}": float(np.quantile(validation_scores, quantile))
        for quantile in REPORTED_QUANTILES
    }
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": asdict(settings),
        "datasets": datasets,
        "training_processes": processes[0],
        "validation_processes": processes[1],
        "executables": len(model.executables),
        "vocabulary": len(model.document_frequency),
        "threshold": threshold,
        "threshold_method": (
            f"quantile {settings.threshold_quantile:g} x {settings.threshold_margin:g} of the "
            f"scores of the {len(validation_scores)} distinct behaviours of "
            f"{processes[1]} held-out benign validation processes"
        ),
        "validation_quantiles": quantiles,
        "validation_behaviours": len(validation_scores),
        "validation_exceeding": int(np.sum(validation_scores >= threshold)),
        "training_seconds": round(seconds, 3),
    }
