"""Numpy-only scoring: profiles -> feature vectors -> autoencoder reconstruction error.

A process's vector is, for each attribute (:data:`~.profile.ATTRIBUTES`), the IDF-weighted
mean of its tokens' FastText vectors, followed by two scalars (the highest IDF among its
tokens relative to an unseen token's, and the log token count). The vector is standardised,
passed through the autoencoder, and its mean squared reconstruction error is divided by the
executable's typical training error (stability normalisation), then by the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from provarmor.detection.anomaly.embedding import FloatArray, WordVectors
from provarmor.detection.anomaly.profile import ATTRIBUTES, Profile

SCALARS_PER_ATTRIBUTE = 2
_TOKEN_CACHE_SIZE = 1 << 16


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyModel:
    """Everything scoring needs; built by training, stored and loaded by the bundle."""

    words: WordVectors
    document_frequency: dict[str, int]
    """``"attribute token"`` -> how many training processes showed it."""
    processes: int
    """Training processes (the IDF denominator)."""
    feature_mean: FloatArray
    feature_scale: FloatArray
    layers: tuple[tuple[FloatArray, FloatArray], ...]
    """Autoencoder (weights, bias) per layer; tanh between layers, linear output."""
    executable_error: dict[str, float]
    """Executable token -> its typical (shrunk) training error."""
    global_error: float
    threshold: float
    """On the normalised scale (error / typical error of the executable)."""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def unseen_idf(self) -> float:
        return math.log(self.processes + 1.0) + 1.0

    def idf(self, key: str) -> float:
        count = self.document_frequency.get(key, 0)
        return math.log((self.processes + 1.0) / (count + 1.0)) + 1.0


@dataclass(frozen=True, slots=True)
class Scored:
    """One profile's score. ``ratio`` is normalised score / threshold (>= 1: anomalous)."""

    error: float
    normalized: float
    ratio: float
    attribute_errors: tuple[float, ...]


def feature_width(dimension: int) -> int:
    return len(ATTRIBUTES) * (dimension + SCALARS_PER_ATTRIBUTE)


class Scorer:
    """Scores batches of profiles with one model; caches token vectors and IDFs."""

    def __init__(self, model: AnomalyModel) -> None:
        self.model = model
        self._dimension = model.words.dimension
        self._tokens: dict[str, tuple[FloatArray, float]] = {}

    def vectors(self, profiles: Sequence[Profile]) -> FloatArray:
        """The raw (unstandardised) feature matrix, one row per profile."""
        width = self._dimension + SCALARS_PER_ATTRIBUTE
        matrix = np.zeros((len(profiles), feature_width(self._dimension)), dtype=np.float32)
        unseen = self.model.unseen_idf
        for row, profile in enumerate(profiles):
            for column, attribute in enumerate(ATTRIBUTES):
                tokens = profile.tokens[attribute]
                if not tokens:
                    continue
                total = np.zeros(self._dimension, dtype=np.float32)
                weight_sum = 0.0
                top = 0.0
                for token in tokens:
                    vector, weight = self._token(attribute, token)
                    total += vector * np.float32(weight)
                    weight_sum += weight
                    top = max(top, weight)
                start = column * width
                matrix[row, start : start + self._dimension] = total / np.float32(weight_sum)
                matrix[row, start + self._dimension] = top / unseen
                matrix[row, start + self._dimension + 1] = math.log1p(len(tokens)) / 4.0
        return matrix

    def score(self, profiles: Sequence[Profile]) -> list[Scored]:
        """Score a batch of profiles."""
        if not profiles:
            return []
        errors, blocks = reconstruction_errors(self.model, self.vectors(profiles))
        results = []
        for profile, error, block in zip(profiles, errors, blocks, strict=True):
            normalized = float(error) / self.typical_error(profile.exe)
            results.append(
                Scored(
                    error=float(error),
                    normalized=normalized,
                    ratio=normalized / self.model.threshold,
                    attribute_errors=tuple(float(value) for value in block),
                )
            )
        return results

    def typical_error(self, exe: str) -> float:
        return self.model.executable_error.get(exe, self.model.global_error)

    def _token(self, attribute: str, token: str) -> tuple[FloatArray, float]:
        key = f"{attribute} {token}"
        cached = self._tokens.get(key)
        if cached is None:
            if len(self._tokens) >= _TOKEN_CACHE_SIZE:
                self._tokens.clear()
            cached = (self.model.words.vector(token), self.model.idf(key))
            self._tokens[key] = cached
        return cached


def reconstruction_errors(model: AnomalyModel, matrix: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean squared reconstruction error per row, and per attribute block."""
    standardized = (matrix - model.feature_mean) / model.feature_scale
    output = forward(model.layers, standardized)
    squared = (output - standardized) ** 2
    blocks = squared.reshape(len(matrix), len(ATTRIBUTES), -1).mean(axis=2)
    return squared.mean(axis=1), blocks


def forward(layers: Sequence[tuple[FloatArray, FloatArray]], inputs: FloatArray) -> FloatArray:
    """The autoencoder's output: tanh hidden layers, linear last layer."""
    values = inputs
    for index, (weights, bias) in enumerate(layers):
        values = values @ weights + bias
        if index < len(layers) - 1:
            values = np.tanh(values)
    return values
