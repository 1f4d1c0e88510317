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
    remembered_behaviours: int = setting(
        10_000,
        "Alerted behaviours (executable context and top surprising tokens) remembered: another "
        "process showing one of them is counted, not alerted again.",
        maturity=Maturity.EXPERIMENTAL,
    )
    realert_factor: float = setting(
        2.0,
        "An alerted process alerts again only when its score grows by this factor.",
        maturity=Maturity.EXPERIMENTAL,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingSettings:
    top_tokens: int = setting(
        3,
        "A process scores the sum of this many of its most surprising tokens.",
        maturity=Maturity.EXPERIMENTAL,
    )
    global_weight: float = setting(
        1.0,
        "Weight of the extra surprise of a token no training process showed.",
        maturity=Maturity.EXPERIMENTAL,
    )
    threshold_quantile: float = setting(
        0.995,
        "Quantile of the scores of the validation processes' distinct behaviours (alerts are "
        "one per behaviour) the threshold starts from.",
        maturity=Maturity.EXPERIMENTAL,
    )
    threshold_margin: float = setting(
        1.0,
        "The threshold is the validation quantile times this.",
        maturity=Maturity.EXPERIMENTAL,
    )
    validation_fraction: float = setting(
        0.2,
        "Without validation datasets: the latest fraction (by start time) of each training "
        "dataset's processes held out for validation.",
        maturity=Maturity.EXPERIMENTAL,
    )
    seed: int = setting(
        1,
        "Random seed (recorded; the counting model is deterministic).",
        maturity=Maturity.EXPERIMENTAL,
    )
