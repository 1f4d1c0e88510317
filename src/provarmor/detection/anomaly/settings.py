"""Settings of the anomaly model: online scoring (:class:`AnomalySettings`) and training
(:class:`TrainingSettings`)."""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.model.errors import ConfigError
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


@dataclass(frozen=True, slots=True, kw_only=True)
class LearningSettings:
    enabled: bool = setting(
        True,
        "A host without a configured model learns its own: it collects the host's benign "
        "baseline for `window_seconds`, trains and calibrates the model on it, then enables it.",
        maturity=Maturity.INCUBATING,
    )
    window_seconds: float = setting(
        86_400.0,
        "Length of the learning window, in event time (the stream's own clock, so a replayed "
        "recording learns as the live host would).",
        maturity=Maturity.INCUBATING,
    )
    validation_fraction: float = setting(
        0.2,
        "The last fraction of the window (event time) is held out: processes that start in it "
        "are never counted, only scored to calibrate the threshold.",
        maturity=Maturity.INCUBATING,
    )
    relearn_interval_seconds: float = setting(
        86_400.0,
        "Event time between model versions: the host keeps collecting its baseline while the "
        "model runs and trains a new version on the last interval (0: never relearn). "
        "Processes the model alerted on, and their descendants, are left out of it.",
        maturity=Maturity.INCUBATING,
    )
    max_open_processes: int = setting(
        100_000,
        "Profiles of running training processes held while learning; beyond it the least "
        "recently active are counted early (counted in `dropped.counted_early`).",
        maturity=Maturity.INCUBATING,
    )
    max_exited: int = setting(
        5_000,
        "Exited processes kept open for late children before they are counted.",
        maturity=Maturity.INCUBATING,
    )
    max_validation_processes: int = setting(
        20_000,
        "Held-out processes kept for calibration; more are dropped and counted.",
        maturity=Maturity.INCUBATING,
    )
    max_tokens: int = setting(
        1_000_000,
        "Distinct (executable, attribute, token) counts in one baseline; new ones beyond it "
        "are dropped and counted.",
        maturity=Maturity.INCUBATING,
    )
    checkpoint_seconds: float = setting(
        60.0,
        "Wall-clock seconds between checkpoints of the learning state (a crash loses at most "
        "this much baseline; the loss is shown as `dropped.unlearned_seconds`).",
        maturity=Maturity.INCUBATING,
    )
    keep_versions: int = setting(
        20,
        "Model versions kept per host (the oldest beyond it are deleted).",
        maturity=Maturity.INCUBATING,
    )

    def __post_init__(self) -> None:
        if self.window_seconds <= 0:
            raise ConfigError("must be more than 0 seconds", location="learning.window_seconds")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError("must be between 0 and 1", location="learning.validation_fraction")
        if self.relearn_interval_seconds < 0:
            raise ConfigError(
                "must be 0 (never) or more", location="learning.relearn_interval_seconds"
            )
