"""``provarmor eval``: score the analysis on labelled lab datasets, once or by the protocol.

Once: ``provarmor eval DATASET... [--model MODEL] [--no-rules]`` runs the pipeline over each
dataset and prints per-dataset and total figures.

Real-world corpus: ``provarmor eval --corpus corpus/real-world`` prints false incidents per
host-hour of the rules, the model and both on the corpus's test chunks, with every false
incident's title and root cause (:mod:`provarmor.evaluation.corpus_eval`).

Protocol: ``provarmor eval TEST... --train DIR... --validation DIR... --seeds 1,2,3,4,5``
trains a model per seed on the training runs, calibrates on the validation runs and scores
the rules alone, the model alone and both on the test runs (attack runs of that seed and
every benign run); it prints mean ± std over the seeds (:mod:`provarmor.evaluation.protocol`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError

if TYPE_CHECKING:
    from provarmor.detection.anomaly.scorer import AnomalyModel
    from provarmor.evaluation.dataset import Dataset
    from provarmor.evaluation.protocol import ProtocolPlan
    from provarmor.evaluation.scoring import EvalReport

console = Console()


def _cell(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds: expected numbers separated by commas, got {text!r}") from None


def _dataset_table(report: EvalReport) -> Table:
    table = Table(title="evaluation per dataset")
    for column in (
        "dataset",
        "seed",
        "kind",
        "events",
        "incidents",
        "true",
        "alerts",
        "true alerts",
        "node P",
        "node R",
        "techniques",
        "latency max s",
    ):
        table.add_column(column)
    for s in report.datasets:
        techniques = (
            f"{len(s.techniques_found)}/{len(s.techniques_expected)}"
            if s.kind == "scenario"
            else "-"
        )
        table.add_row(
            escape(s.name),
            str(s.seed),
            s.kind,
            f"{s.events:,}",
            str(s.incidents),
            str(s.true_incidents),
            str(s.alerts),
            str(s.true_alerts),
            _cell(s.precision),
            _cell(s.recall),
            techniques,
            _cell(max(s.latencies_s)) if s.latencies_s else "-",
        )
    return table


def _containment_tables(report: EvalReport) -> list[Table]:
    """Per dataset and mean ± std per scenario, for datasets recorded with response."""
    from provarmor.evaluation.scoring import CONTAINMENT_METRICS, containment_summary

    runs = [(s, s.containment) for s in report.datasets if s.containment is not None]
    if not runs:
        return []
    table = Table(title="containment per dataset (lab run --response)")
    for column in (
        "dataset",
        "seed",
        "mode",
        "actions",
        "contained",
        "attack→incident s",
        "incident→contained s",
        "attack→contained s",
        "attacker procs after",
        "attacker conns after",
        "non-attack actions",
        "firewall",
        "conns after firewall",
        "non-attack blocks",
        "non-attack files",
    ):
        table.add_column(column)
    for s, c in runs:
        outcomes: dict[str, int] = {}
        for action in c.actions:
            outcomes[action.outcome] = outcomes.get(action.outcome, 0) + 1
        table.add_row(
            escape(s.name),
            str(s.seed),
            escape(c.mode) or "-",
            ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "-",
            "yes" if c.contained else "NO",
            _cell(c.attack_to_incident_s),
            _cell(c.incident_to_containment_s),
            _cell(c.attack_to_containment_s),
            _cell(None if c.attacker_processes_after is None else len(c.attacker_processes_after)),
            _cell(c.attacker_connections_after),
            str(c.non_attack_process_actions),
            str(c.firewall_actions),
            _cell(c.connections_after_firewall),
            str(c.non_attack_blocks),
            str(c.non_attack_file_actions),
        )
    summary = Table(title="containment: mean ± std over seeds")
    summary.add_column("scenario")
    for metric in CONTAINMENT_METRICS:
        summary.add_column(metric.replace("_", " "), justify="right")
    for name, metrics in containment_summary(report.datasets).items():
        cells = [
            "-" if value is None else f"{value[0]:.2f} ± {value[1]:.2f}"
            for value in metrics.values()
        ]
        summary.add_row(escape(name), *cells)
    return [table, summary]


def _report_json(report: EvalReport) -> dict[str, Any]:
    from provarmor.evaluation.scoring import containment_summary

    return {
        "totals": report.totals(),
        "containment_summary": {
            name: {m: list(v) if v is not None else None for m, v in metrics.items()}
            for name, metrics in containment_summary(report.datasets).items()
        },
        "datasets": [
            {
                "name": s.name,
                "seed": s.seed,
                "kind": s.kind,
                "events": s.events,
                "incidents": s.incidents,
                "true_incidents": s.true_incidents,
                "alerts": s.alerts,
                "true_alerts": s.true_alerts,
                "node_precision": s.precision,
                "node_recall": s.recall,
                "techniques_expected": sorted(s.techniques_expected),
                "techniques_found": sorted(s.techniques_found),
                "latencies_s": s.latencies_s,
                "containment": (
                    None if s.containment is None else dataclasses.asdict(s.containment)
                ),
            }
            for s in report.datasets
        ],
    }


def _check_rules(rules: list[Path] | None) -> tuple[Path, ...]:
    from provarmor.detection.sigma.loader import bundled_rules

    paths = tuple(rules or [bundled_rules()])
    for path in paths:
        if not path.exists():
            raise ConfigError(f"no rules at {path}")
    return paths


def eval_command(  # noqa: PLR0913
    datasets: Annotated[
        list[Path] | None, typer.Argument(help="Lab dataset directories to test on.")
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="Sigma rules (default: the bundled pack)."),
    ] = None,
    no_rules: Annotated[bool, typer.Option("--no-rules", help="Run without rules.")] = False,
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Anomaly model (provarmor train).")
    ] = None,
    learn: Annotated[
        list[Path] | None,
        typer.Option(
            "--learn",
            help="Benign datasets, in recording order: the model is the one learning mode "
            "enables after a window made of them (the shipped default), instead of --model.",
        ),
    ] = None,
    train: Annotated[
        list[Path] | None, typer.Option("--train", help="Protocol: benign training datasets.")
    ] = None,
    validation: Annotated[
        list[Path] | None,
        typer.Option("--validation", help="Protocol: benign validation datasets."),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Protocol: seeds, e.g. 1,2,3,4,5.")] = "1,2,3,4,5",
    configurations: Annotated[
        str | None,
        typer.Option(help="Protocol: configurations to compare, e.g. rules,both (default: all)."),
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Protocol: seeds run in parallel.")] = 1,
    as_json: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(
            help="The real-world benign corpus (corpus.json): false incidents per host-hour "
            "with the shipped defaults, reported apart from lab datasets."
        ),
    ] = None,
) -> None:
    """Score the analysis on labelled datasets (labels are read only to score)."""
    if corpus is not None:
        if datasets or train or validation or learn or model is not None:
            raise ConfigError(
                "--corpus takes no datasets, --train, --validation, --learn or --model: its "
                "manifest says which chunks are learning, calibration and test data"
            )
        from provarmor.cli.corpus_report import corpus_command
        from provarmor.evaluation.protocol import CONFIGURATIONS

        chosen = ",".join(CONFIGURATIONS) if configurations is None else configurations
        corpus_command(
            corpus,
            rules=() if no_rules else _check_rules(rules),
            seeds=_seeds(seeds),
            configurations=[c.strip() for c in chosen.split(",") if c.strip()],
            as_json=as_json,
        )
        return
    if not datasets:
        raise ConfigError("give lab dataset directories to test on (or --corpus DIR)")
    from provarmor.detection.anomaly.bundle import load_bundle
    from provarmor.evaluation.dataset import load_dataset
    from provarmor.evaluation.protocol import CONFIGURATIONS, ProtocolPlan
    from provarmor.evaluation.scoring import evaluate
    from provarmor.pipeline.assembly import build_analysis, describe_rule, plan_from_config

    config = OPTIONS.load()
    rule_paths = () if no_rules else _check_rules(rules)
    chosen = ",".join(CONFIGURATIONS) if configurations is None else configurations
    if train or validation:
        if learn or model is not None:
            raise ConfigError("the protocol trains its own model: no --learn or --model")
        if not train or not validation:
            raise ConfigError("the protocol needs both --train and --validation datasets")
        _protocol(
            ProtocolPlan(
                train=train,
                validation=validation,
                test=datasets,
                seeds=_seeds(seeds),
                rules=rule_paths or _check_rules(rules),
                configurations=[c.strip() for c in chosen.split(",") if c.strip()],
                analysis=plan_from_config(config),
            ),
            as_json=as_json,
            jobs=jobs,
        )
        return
    loaded = [load_dataset(path) for path in datasets]
    if learn and model is not None:
        raise ConfigError("--learn or --model, not both")
    anomaly = _learned(learn, loaded) if learn else None
    if model is not None:
        anomaly = load_bundle(model)
    plan = plan_from_config(config, rules=rule_paths, model=anomaly)
    report = evaluate(loaded, lambda: build_analysis(plan))
    console.print(_dataset_table(report))
    for table in _containment_tables(report):
        console.print(table)
    totals = report.totals()
    summary = Table(title="totals")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for key, value in totals.items():
        summary.add_row(key.replace("_", " "), _cell(value, 3))
    console.print(summary)
    console.print(f"incident rule: {describe_rule(plan.effective_rule())}")
    if as_json is not None:
        as_json.write_text(json.dumps(_report_json(report), indent=2) + "\n")


def _learned(window: list[Path], tests: list[Dataset]) -> AnomalyModel:
    """The model learning mode enables after ``window``; the first test dataset recorded
    after the window closes it, as the next event would on the host."""
    from provarmor.detection.anomaly.settings import LearningSettings, TrainingSettings
    from provarmor.evaluation.corpus_eval import learn_model
    from provarmor.evaluation.protocol import benign_dataset

    learning = sorted(
        (benign_dataset(path, "learning") for path in window), key=lambda d: d.meta.started_ns
    )
    end = learning[-1].meta.ended_ns
    after = sorted((d for d in tests if d.meta.started_ns >= end), key=lambda d: d.meta.started_ns)
    if not after:
        raise ConfigError(
            "--learn: no test dataset was recorded after the learning window (one closes it)"
        )
    anomaly = learn_model(
        learning, after[0], settings=LearningSettings(), training=TrainingSettings()
    )
    console.print(
        f"learning mode: model version {anomaly.metadata['model_version']} learned on "
        f"{len(learning)} datasets ({anomaly.metadata['training_processes']} processes, "
        f"{anomaly.metadata['validation_processes']} held out), threshold {anomaly.threshold:.3f}"
    )
    return anomaly


def _protocol(plan: ProtocolPlan, *, as_json: Path | None, jobs: int) -> None:
    from provarmor.evaluation.protocol import METRICS, run_protocol
    from provarmor.pipeline.assembly import describe_rule

    report = run_protocol(plan, progress=lambda line: console.print(escape(line)), jobs=jobs)
    table = Table(title=f"mean ± std over seeds {', '.join(map(str, plan.seeds))}")
    table.add_column("metric")
    summary = report.summary()
    for configuration in summary:
        table.add_column(configuration, justify="right")
    for metric in METRICS:
        cells = []
        for configuration in summary:
            value = summary[configuration][metric]
            cells.append("-" if value is None else f"{value[0]:.3f} ± {value[1]:.3f}")
        table.add_row(metric.replace("_", " "), *cells)
    console.print(table)
    console.print(
        f"training processes {report.training_processes:,}, validation processes "
        f"{report.validation_processes:,}, validation host-hours {report.validation_hours:.3f}"
    )
    if as_json is not None:
        document = {
            "summary": {
                c: {m: list(v) if v is not None else None for m, v in metrics.items()}
                for c, metrics in summary.items()
            },
            "runs": [
                {
                    "seed": run.seed,
                    "configuration": run.configuration,
                    "incident_rule": describe_rule(run.incident_rule),
                    "model_threshold": run.model_threshold,
                    "seconds": run.seconds,
                    **_report_json(run.report),
                }
                for run in report.runs
            ],
        }
        as_json.write_text(json.dumps(document, indent=2) + "\n")


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(name="eval", rich_help_panel=panel)(eval_command)
