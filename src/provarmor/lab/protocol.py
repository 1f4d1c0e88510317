"""The evaluation protocol: train on benign runs, calibrate on other benign runs, test on
held-out attack and benign runs, repeat over seeds, compare configurations.

For each seed:

1. the anomaly model is trained on the TRAINING datasets (benign only; the seed drives the
   embedding and the autoencoder), its score threshold set on the VALIDATION datasets
   (benign, never seen in training);
2. for each configuration (``rules``, ``model``, ``both``), the incident rule is calibrated
   on the campaigns the configuration produces on the VALIDATION datasets;
3. the configuration is scored (:mod:`provarmor.lab.evaluation`) on the TEST datasets: the
   attack runs recorded with this seed and every benign test run.

Labels are read only by the scoring step, after a pipeline has seen a dataset's events.
Training and validation datasets must be benign: anything else is refused before any
event is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from provarmor.detection.anomaly.profile import Profile, build_histories
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import TrainingSettings
from provarmor.detection.anomaly.train import TrainingData, train_model
from provarmor.investigation.incidents import IncidentRule
from provarmor.lab.dataset import UnlabelledDataset, load_dataset, load_unlabelled
from provarmor.lab.evaluation import DatasetScore, EvalReport, adp, mean_std, score_dataset
from provarmor.model.attack import load_attack_table
from provarmor.model.errors import ConfigError
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis

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
    return sum(max(d.meta.ended_ns - d.meta.started_ns, 0) / 3.6e12 for d in datasets)


def calibrate(
    plan: AnalysisPlan, validation: Sequence[UnlabelledDataset], *, target_per_hour: float
) -> IncidentRule:
    """The incident rule for ``plan``: from the campaigns it makes on benign validation runs."""
    scores: list[float] = []
    for dataset in validation:
        analysis = build_analysis(plan)
        for _ in analysis.run(dataset.events()):
            pass
        scores.extend(campaign.score for campaign in analysis.engine.campaigns())
    return IncidentRule.calibrate(scores, hours=_hours(validation), target=target_per_hour)


def run_protocol(plan: ProtocolPlan, *, progress: Callable[[str], None]) -> ProtocolReport:
    """Run the whole protocol; ``progress`` hears one line per step."""
    unknown = set(plan.configurations) - set(CONFIGURATIONS)
    if unknown:
        raise ConfigError(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    training = [benign_dataset(path, "training") for path in plan.train]
    validation = [benign_dataset(path, "validation") for path in plan.validation]
    tests = [load_dataset(path) for path in plan.test]
    report = ProtocolReport(validation_hours=_hours(validation))
    needs_model = any(c != "rules" for c in plan.configurations)
    train_profiles = _histories(training) if needs_model else []
    validation_profiles = _histories(validation) if needs_model else []
    report.training_processes, report.validation_processes = (
        len(train_profiles),
        len(validation_profiles),
    )
    attack = load_attack_table()
    rules_only: dict[tuple[str, int], DatasetScore] = {}
    rules_rule: IncidentRule | None = None
    for seed in plan.seeds:
        model: AnomalyModel | None = None
        if needs_model:
            started = time.monotonic()
            model = train_model(
                TrainingData(training=train_profiles, validation=validation_profiles),
                replace(plan.training, seed=seed),
            )
            progress(f"seed {seed}: model trained in {time.monotonic() - started:.0f} s")
        chosen = [d for d in tests if d.meta.kind == "benign" or d.meta.seed == seed]
        for configuration in plan.configurations:
            started = time.monotonic()
            base = AnalysisPlan(
                rules=tuple(plan.rules) if configuration != "model" else (),
                model=model if configuration != "rules" else None,
            )
            if configuration == "rules" and rules_rule is not None:
                rule = rules_rule  # rules alone do not depend on the seed
            else:
                rule = calibrate(base, validation, target_per_hour=plan.target_per_hour)
                if configuration == "rules":
                    rules_rule = rule
            final = replace(base, incident_rule=rule)
            scores = []
            for dataset in chosen:
                key = (str(dataset.path), dataset.meta.seed)
                if configuration == "rules" and key in rules_only:
                    scores.append(rules_only[key])
                    continue
                score = score_dataset(dataset, build_analysis(final), attack=attack)
                if configuration == "rules":
                    rules_only[key] = score
                scores.append(score)
            result = RunResult(
                seed=seed,
                configuration=configuration,
                report=EvalReport(datasets=scores, adp=adp(scores)),
                incident_rule=rule,
                model_threshold=base.model.threshold if base.model is not None else None,
                seconds=time.monotonic() - started,
            )
            report.runs.append(result)
            progress(f"seed {seed} {configuration}: {result.seconds:.0f} s")
    return report
