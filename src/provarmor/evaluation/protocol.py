"""The evaluation protocol: train on benign runs, calibrate on other benign runs, test on
held-out attack and benign runs, repeat over seeds, compare configurations.

For each seed:

1. the anomaly model is trained on the TRAINING datasets (benign only; the seed drives the
   embedding and the autoencoder), its score threshold set on the VALIDATION datasets
   (benign, never seen in training);
2. for each configuration (``rules``, ``model``, ``both``), the incident rule is calibrated
   on the campaigns the configuration produces on the VALIDATION datasets;
3. the configuration is scored (:mod:`provarmor.evaluation.scoring`) on the TEST datasets: the
   attack runs recorded with this seed and every benign test run.

Labels are read only by the scoring step, after a pipeline has seen a dataset's events.
Training and validation datasets must be benign: anything else is refused before any
event is read.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from provarmor.detection.anomaly.profile import Profile, build_histories
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import TrainingSettings
from provarmor.detection.anomaly.train import TrainingData, train_model
from provarmor.detection.sigma.ruleset import RuleSet
from provarmor.evaluation.dataset import Dataset, UnlabelledDataset, load_dataset, load_unlabelled
from provarmor.evaluation.scoring import DatasetScore, EvalReport, adp, mean_std, score_dataset
from provarmor.investigation.incidents import IncidentRule, calibration_floor
from provarmor.model.attack import load_attack_table
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import ns_to_hours
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis, compile_rules

CONFIGURATIONS = ("rules", "model", "both")
METRICS = (
    "incident_detection",
    "one_incident",
    "false_incidents_per_host_hour",
    "false_incidents_in_attack_runs",
    "node_precision",
    "node_recall",
    "adp",
    "technique_coverage",
    "latency_p50_s",
    "latency_p99_s",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolPlan:
    train: Sequence[Path]
    validation: Sequence[Path]
    test: Sequence[Path]
    seeds: Sequence[int]
    rules: Sequence[Path]
    configurations: Sequence[str] = CONFIGURATIONS
    target_per_hour: float = 1 / 24
    """Calibration target: false incidents per benign validation host-hour."""
    training: TrainingSettings = field(default_factory=TrainingSettings)
    analysis: AnalysisPlan = field(default_factory=AnalysisPlan)
    """What every configuration's plan starts from (the configured settings); each
    configuration sets its rules, model and calibrated incident rule on it."""


@dataclass(slots=True, kw_only=True)
class RunResult:
    seed: int
    configuration: str
    report: EvalReport
    incident_rule: IncidentRule
    model_threshold: float | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class ProtocolReport:
    runs: list[RunResult] = field(default_factory=list)
    validation_hours: float = 0.0
    training_processes: int = 0
    validation_processes: int = 0

    def summary(self) -> dict[str, dict[str, tuple[float, float] | None]]:
        """Per configuration, per metric: (mean, sample std) over seeds."""
        out: dict[str, dict[str, tuple[float, float] | None]] = {}
        for configuration in dict.fromkeys(run.configuration for run in self.runs):
            runs = [run for run in self.runs if run.configuration == configuration]
            totals = [run.report.totals() for run in runs]
            out[configuration] = {
                metric: mean_std([_number(t.get(metric)) for t in totals]) for metric in METRICS
            }
        return out


def _number(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def benign_dataset(path: Path, role: str) -> UnlabelledDataset:
    dataset = load_unlabelled(path)
    if dataset.meta.kind != "benign":
        raise ConfigError(
            f"{path}: a {dataset.meta.kind} dataset cannot be {role} data (benign only)"
        )
    return dataset


def _histories(datasets: Sequence[UnlabelledDataset]) -> list[list[Profile]]:
    return [h for dataset in datasets for h in build_histories(dataset.events())]


def _hours(datasets: Sequence[UnlabelledDataset]) -> float:
    return sum(ns_to_hours(max(d.meta.ended_ns - d.meta.started_ns, 0)) for d in datasets)


def calibrate(
    plan: AnalysisPlan, validation: Sequence[UnlabelledDataset], *, target_per_hour: float
) -> IncidentRule:
    """The incident rule for ``plan``: from the campaigns it makes on benign validation runs."""
    scores: list[float] = []
    for dataset in validation:
        analysis = build_analysis(plan)
        analysis.collect(dataset.events())
        scores.extend(campaign.score for campaign in analysis.engine.campaigns())
    return IncidentRule.calibrate(
        scores,
        hours=_hours(validation),
        target=target_per_hour,
        floor=calibration_floor(plan.investigation),
    )


@dataclass(slots=True, kw_only=True)
class _Shared:
    """What every seed's run reads (prepared once; inherited by worker processes)."""

    plan: ProtocolPlan
    ruleset: RuleSet | None
    validation: list[UnlabelledDataset]
    tests: list[Dataset]
    train_histories: list[list[Profile]]
    validation_histories: list[list[Profile]]
    rules_rule: IncidentRule | None = None
    rules_scores: dict[tuple[str, int], DatasetScore] = field(default_factory=dict)


_SHARED: _Shared | None = None


def run_protocol(
    plan: ProtocolPlan, *, progress: Callable[[str], None], jobs: int = 1
) -> ProtocolReport:
    """Run the whole protocol; ``progress`` hears one line per step. ``jobs`` > 1 runs seeds
    in that many worker processes (results are the same, in seed order)."""
    global _SHARED
    unknown = set(plan.configurations) - set(CONFIGURATIONS)
    if unknown:
        raise ConfigError(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    training = [benign_dataset(path, "training") for path in plan.train]
    validation = [benign_dataset(path, "validation") for path in plan.validation]
    tests = [load_dataset(path) for path in plan.test]
    needs_model = any(c != "rules" for c in plan.configurations)
    shared = _Shared(
        plan=plan,
        ruleset=compile_rules(plan.rules) if plan.rules else None,
        validation=validation,
        tests=tests,
        train_histories=_histories(training) if needs_model else [],
        validation_histories=_histories(validation) if needs_model else [],
    )
    report = ProtocolReport(
        validation_hours=_hours(validation),
        training_processes=len(shared.train_histories),
        validation_processes=len(shared.validation_histories),
    )
    if jobs <= 1 or len(plan.seeds) <= 1:
        for seed in plan.seeds:
            report.runs += _run_seed(shared, seed, progress)
        return report
    _SHARED = shared
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            for runs in pool.map(_run_seed_in_worker, plan.seeds):
                report.runs += runs
                progress(f"seed {runs[0].seed} done" if runs else "seed done")
    finally:
        _SHARED = None
    return report


def _run_seed_in_worker(seed: int) -> list[RunResult]:
    assert _SHARED is not None
    return _run_seed(_SHARED, seed, lambda line: None)


def _run_seed(shared: _Shared, seed: int, progress: Callable[[str], None]) -> list[RunResult]:
    plan = shared.plan
    attack = load_attack_table()
    model: AnomalyModel | None = None
    if shared.train_histories:
        started = time.monotonic()
        model = train_model(
            TrainingData(training=shared.train_histories, validation=shared.validation_histories),
            replace(plan.training, seed=seed),
        )
        progress(f"seed {seed}: model trained in {time.monotonic() - started:.0f} s")
    chosen = [d for d in shared.tests if d.meta.kind == "benign" or d.meta.seed == seed]
    runs = []
    for configuration in plan.configurations:
        started = time.monotonic()
        base = replace(
            plan.analysis,
            ruleset=shared.ruleset if configuration != "model" else None,
            model=model if configuration != "rules" else None,
        )
        if configuration == "rules" and shared.rules_rule is not None:
            rule = shared.rules_rule  # rules alone do not depend on the seed
        else:
            rule = calibrate(base, shared.validation, target_per_hour=plan.target_per_hour)
            if configuration == "rules":
                shared.rules_rule = rule
        final = replace(base, incident_rule=rule)
        scores = []
        for dataset in chosen:
            key = (str(dataset.path), dataset.meta.seed)
            cached = shared.rules_scores.get(key) if configuration == "rules" else None
            if cached is None:
                cached = score_dataset(dataset, build_analysis(final), attack=attack)
                if configuration == "rules":
                    shared.rules_scores[key] = cached
            scores.append(cached)
        result = RunResult(
            seed=seed,
            configuration=configuration,
            report=EvalReport(datasets=scores, adp=adp(scores)),
            incident_rule=rule,
            model_threshold=model.threshold if configuration != "rules" and model else None,
            seconds=time.monotonic() - started,
        )
        runs.append(result)
        progress(f"seed {seed} {configuration}: {result.seconds:.0f} s")
    return runs
