"""Settings of the anomaly model: online scoring (:class:`AnomalySettings`) and training
(:class:`TrainingSettings`)."""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.model.setting import Maturity, setting


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalySettings:
    model: str = setting(
        "",
        "Path of the anomaly model bundle (`provarmor train`); empty: the detector is off.",
        maturity=Maturity.EXPERIMENTAL,
    )
    batch_size: int = setting(
        256,
        "Changed processes scored together once this many are pending.",
        maturity=Maturity.EXPERIMENTAL,
    )
    max_delay_seconds: float = setting(
        0.5,
        "A changed process is scored at the latest this long (event time) after its change.",
        maturity=Maturity.EXPERIMENTAL,
    )
    max_processes: int = setting(
        200_000,
        "Profiles held in memory; the least recently active are evicted beyond it.",
        maturity=Maturity.EXPERIMENTAL,
    )
    max_exited: int = setting(
        20_000,
        "Profiles of exited processes kept (for late children); oldest go first.",
        maturity=Maturity.EXPERIMENTAL,
    )
    explain_tokens: int = setting(
        5,
        "Contributing tokens named in an alert's description.",
        maturity=Maturity.EXPERIMENTAL,
    )
    realert_factor: float = setting(
        2.0,
        "An alerted process alerts again only when its score grows by this factor.",
        maturity=Maturity.EXPERIMENTAL,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingSettings:
    dimension: int = setting(32, "FastText vector size.", maturity=Maturity.EXPERIMENTAL)
    embedding_epochs: int = setting(10, "FastText epochs.", maturity=Maturity.EXPERIMENTAL)
    window: int = setting(5, "FastText context window.", maturity=Maturity.EXPERIMENTAL)
    buckets: int = setting(
        20_000,
        "FastText character n-gram buckets (vectors for unseen tokens).",
        maturity=Maturity.EXPERIMENTAL,
    )
    min_n: int = setting(3, "Shortest character n-gram.", maturity=Maturity.EXPERIMENTAL)
    max_n: int = setting(5, "Longest character n-gram.", maturity=Maturity.EXPERIMENTAL)
    hidden: int = setting(64, "Autoencoder hidden layer width.", maturity=Maturity.EXPERIMENTAL)
    code: int = setting(16, "Autoencoder bottleneck width.", maturity=Maturity.EXPERIMENTAL)
    epochs: int = setting(60, "Autoencoder epochs.", maturity=Maturity.EXPERIMENTAL)
    batch_size: int = setting(128, "Autoencoder minibatch.", maturity=Maturity.EXPERIMENTAL)
    learning_rate: float = setting(0.003, "Adam learning rate.", maturity=Maturity.EXPERIMENTAL)
    shrinkage: float = setting(
        5.0,
        "Pseudo-count pulling an executable's typical error towards the global one.",
        maturity=Maturity.EXPERIMENTAL,
    )
    threshold_quantile: float = setting(
        0.999,
        "Quantile of the validation processes' normalised scores used as the threshold.",
        maturity=Maturity.EXPERIMENTAL,
    )
    validation_fraction: float = setting(
        0.2,
        "Without validation datasets: the latest fraction (by start time) of each training "
        "dataset's processes held out for validation.",
        maturity=Maturity.EXPERIMENTAL,
    )
    seed: int = setting(1, "Random seed.", maturity=Maturity.EXPERIMENTAL)
