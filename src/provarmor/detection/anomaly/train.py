"""Training on benign processes only: FastText embedding, IDF, autoencoder, calibration.

The threshold is a quantile of the normalised scores of the VALIDATION processes: profiles the
autoencoder never saw. Nothing here reads labels; callers hand over benign profiles only.
gensim is imported here and only here (the ``train`` extra); scoring never needs it.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from provarmor.detection.anomaly.autoencoder import fit_autoencoder
from provarmor.detection.anomaly.embedding import WordVectors
from provarmor.detection.anomaly.profile import ATTRIBUTES, Profile
from provarmor.detection.anomaly.scorer import AnomalyModel, Scorer, reconstruction_errors
from provarmor.detection.anomaly.settings import TrainingSettings
from provarmor.model.errors import ConfigError

MIN_TRAINING_PROCESSES = 20
MIN_VALIDATION_PROCESSES = 10
REPORTED_QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingData:
    """Benign training and validation processes, and where they came from."""

    training: Sequence[Sequence[Profile]]
    validation: Sequence[Sequence[Profile]]
    """Per process, its profile history (:func:`~.profile.build_histories`)."""
    datasets: list[dict[str, Any]] = field(default_factory=list)
    """Name, kind, role, sha256 digest and counts of each input, for the metadata."""


def split_by_time(
    histories: Sequence[Sequence[Profile]], fraction: float
) -> tuple[list[Sequence[Profile]], list[Sequence[Profile]]]:
    """(earlier, later): the latest ``fraction`` of processes by first activity are held out."""
    ordered = sorted(
        histories, key=lambda history: (history[0].first_timestamp, history[0].entity_id)
    )
    cut = len(ordered) - round(len(ordered) * fraction)
    return ordered[:cut], ordered[cut:]


def train_model(data: TrainingData, settings: TrainingSettings) -> AnomalyModel:
    """Fit the whole model and calibrate its threshold on the validation processes."""
    if len(data.training) < MIN_TRAINING_PROCESSES:
        raise ConfigError(f"too few training processes: {len(data.training)}")
    if len(data.validation) < MIN_VALIDATION_PROCESSES:
        raise ConfigError(f"too few validation processes: {len(data.validation)}")
    started = time.monotonic()
    finals = [history[-1] for history in data.training]
    samples = [profile for history in data.training for profile in history]
    words = _fit_embedding(finals, settings)
    frequency = document_frequency(finals)
    draft = AnomalyModel(
        words=words,
        document_frequency=frequency,
        processes=len(finals),
        feature_mean=np.zeros(1, dtype=np.float32),
        feature_scale=np.ones(1, dtype=np.float32),
        layers=(),
        executable_error={},
        global_error=1.0,
        threshold=1.0,
    )
    matrix = Scorer(draft).vectors(samples)
    mean = matrix.mean(axis=0)
    scale = np.maximum(matrix.std(axis=0), 1e-3).astype(np.float32)
    fit = fit_autoencoder(
        ((matrix - mean) / scale).astype(np.float64),
        sizes=[matrix.shape[1], settings.hidden, settings.code, settings.hidden],
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        seed=settings.seed,
    )
    fitted = dataclasses.replace(
        draft,
        feature_mean=mean.astype(np.float32),
        feature_scale=scale,
        layers=tuple((w.astype(np.float32), b.astype(np.float32)) for w, b in fit.layers),
    )
    errors, _ = reconstruction_errors(fitted, matrix)
    typical, global_error = _typical_errors(samples, errors, shrinkage=settings.shrinkage)
    calibrated = dataclasses.replace(fitted, executable_error=typical, global_error=global_error)
    validation_scores = process_scores(Scorer(calibrated), data.validation)
    threshold = float(np.quantile(validation_scores, settings.threshold_quantile))
    metadata = _metadata(
        data,
        settings=settings,
        vocabulary=len(words.index),
        losses=fit.losses,
        threshold=threshold,
        validation_scores=validation_scores,
        seconds=time.monotonic() - started,
    )
    return dataclasses.replace(calibrated, threshold=threshold, metadata=metadata)


def process_scores(scorer: Scorer, histories: Sequence[Sequence[Profile]]) -> Any:
    """Each process's highest normalised score over its history (what online scoring saw)."""
    flat = [profile for history in histories for profile in history]
    scores = [scored.normalized for scored in scorer.score(flat)]
    result, start = [], 0
    for history in histories:
        result.append(max(scores[start : start + len(history)]))
        start += len(history)
    return np.array(result)


def document_frequency(profiles: Sequence[Profile]) -> dict[str, int]:
    """``"attribute token"`` -> number of processes that showed it."""
    counts: Counter[str] = Counter()
    for profile in profiles:
        counts.update(
            f"{attribute} {token}"
            for attribute in ATTRIBUTES
            for token in profile.tokens[attribute]
        )
    return dict(counts)


def _fit_embedding(profiles: Sequence[Profile], settings: TrainingSettings) -> WordVectors:
    try:
        from gensim.models import FastText  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            "training needs gensim: pip install 'provarmor[train]'", location="provarmor train"
        ) from None
    sentences = [sentence for sentence in (profile.sentence() for profile in profiles) if sentence]
    model = FastText(
        sentences=sentences,
        vector_size=settings.dimension,
        window=settings.window,
        min_count=1,
        epochs=settings.embedding_epochs,
        bucket=settings.buckets,
        min_n=settings.min_n,
        max_n=settings.max_n,
        seed=settings.seed,
        workers=1,
    )
    vectors = model.wv
    return WordVectors(
        vocabulary=list(vectors.index_to_key),
        vectors=np.asarray(vectors.vectors, dtype=np.float32),
        ngram_vectors=np.asarray(vectors.vectors_ngrams, dtype=np.float32),
        min_n=settings.min_n,
        max_n=settings.max_n,
    )


def _typical_errors(
    profiles: Sequence[Profile], errors: Any, *, shrinkage: float
) -> tuple[dict[str, float], float]:
    """Per executable: (sum of errors + k * global mean) / (count + k)."""
    global_error = float(np.mean(errors))
    sums: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for profile, error in zip(profiles, errors, strict=True):
        sums[profile.exe] = sums.get(profile.exe, 0.0) + float(error)
        counts[profile.exe] += 1
    typical = {
        exe: (sums[exe] + shrinkage * global_error) / (counts[exe] + shrinkage) for exe in counts
    }
    return typical, global_error


def _metadata(  # noqa: PLR0913  (everything the bundle records about one training run)
    data: TrainingData,
    *,
    settings: TrainingSettings,
    vocabulary: int,
    losses: list[float],
    threshold: float,
    validation_scores: Any,
    seconds: float,
) -> dict[str, Any]:
    quantiles = {
        f"q{quantile:g}": float(np.quantile(validation_scores, quantile))
        for quantile in REPORTED_QUANTILES
    }
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": dataclasses.asdict(settings),
        "datasets": data.datasets,
        "training_processes": len(data.training),
        "validation_processes": len(data.validation),
        "vocabulary": vocabulary,
        "epochs": len(losses),
        "final_loss": losses[-1] if losses else 0.0,
        "threshold": threshold,
        "threshold_method": (
            f"quantile {settings.threshold_quantile:g} of the normalised scores of "
            f"{len(data.validation)} held-out benign validation processes"
        ),
        "validation_quantiles": quantiles,
        "validation_exceeding": int(np.sum(validation_scores > threshold)),
        "training_seconds": round(seconds, 3),
    }
