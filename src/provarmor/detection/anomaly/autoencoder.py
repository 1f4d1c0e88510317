"""A small numpy autoencoder trained with Adam on mean squared reconstruction error."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class FitResult:
    layers: list[tuple[Array, Array]]
    losses: list[float]
    """Mean training loss per epoch."""


def fit_autoencoder(  # noqa: PLR0913  (the hyper-parameters of one fit)
    data: Array,
    *,
    sizes: list[int],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> FitResult:
    """Fit layers ``sizes[0] -> sizes[1] -> ... -> sizes[0]`` (tanh hidden, linear output)."""
    rng = np.random.default_rng(seed)
    widths = [*sizes, sizes[0]]
    layers = []
    for fan_in, fan_out in itertools.pairwise(widths):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        layers.append((rng.uniform(-limit, limit, (fan_in, fan_out)), np.zeros(fan_out)))
    moments = [
        (np.zeros_like(w), np.zeros_like(b), np.zeros_like(w), np.zeros_like(b)) for w, b in layers
    ]
    step = 0
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(data))
        total = 0.0
        for start in range(0, len(data), batch_size):
            batch = data[order[start : start + batch_size]]
            loss, gradients = _gradients(layers, batch)
            total += loss * len(batch)
            step += 1
            layers = _adam(layers, gradients, moments, step=step, learning_rate=learning_rate)
        losses.append(total / max(len(data), 1))
    return FitResult(layers=layers, losses=losses)


def _gradients(
    layers: list[tuple[Array, Array]], batch: Array
) -> tuple[float, list[tuple[Array, Array]]]:
    activations = [batch]
    values = batch
    for index, (weights, bias) in enumerate(layers):
        values = values @ weights + bias
        if index < len(layers) - 1:
            values = np.tanh(values)
        activations.append(values)
    difference = activations[-1] - batch
    loss = float(np.mean(difference**2))
    delta = 2.0 * difference / difference.size
    gradients: list[tuple[Array, Array]] = []
    for index in range(len(layers) - 1, -1, -1):
        weights, _ = layers[index]
        gradients.append((activations[index].T @ delta, delta.sum(axis=0)))
        if index > 0:
            delta = (delta @ weights.T) * (1.0 - activations[index] ** 2)
    gradients.reverse()
    return loss, gradients


def _adam(
    layers: list[tuple[Array, Array]],
    gradients: list[tuple[Array, Array]],
    moments: list[tuple[Array, Array, Array, Array]],
    *,
    step: int,
    learning_rate: float,
) -> list[tuple[Array, Array]]:
    beta1, beta2, epsilon = 0.9, 0.999, 1e-8
    correction1 = 1.0 - beta1**step
    correction2 = 1.0 - beta2**step
    updated = []
    for (weights, bias), (grad_w, grad_b), (m_w, m_b, v_w, v_b) in zip(
        layers, gradients, moments, strict=True
    ):
        for moment, velocity, gradient in ((m_w, v_w, grad_w), (m_b, v_b, grad_b)):
            moment *= beta1
            moment += (1.0 - beta1) * gradient
            velocity *= beta2
            velocity += (1.0 - beta2) * gradient**2
        weights = weights - learning_rate * (m_w / correction1) / (
            np.sqrt(v_w / correction2) + epsilon
        )
        bias = bias - learning_rate * (m_b / correction1) / (np.sqrt(v_b / correction2) + epsilon)
        updated.append((weights, bias))
    return updated
