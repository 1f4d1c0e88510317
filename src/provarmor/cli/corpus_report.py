"""``provarmor eval --corpus DIR``: the real-world corpus's false incidents, per chunk and in
total, with each false incident's title and root cause (:mod:`provarmor.evaluation.corpus_eval`)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from provarmor.cli.terminal import escape
from provarmor.evaluation.corpus import EVALUATED_ROLES
from provarmor.evaluation.corpus_eval import CorpusReport, evaluate_corpus
from provarmor.evaluation.scoring import mean_std

console = Console() if sys.stdout.isatty() else Console(width=200)
"""Logs and pipes get the wide tables whole (titles and root causes are long)."""


def _mean_std(values: Sequence[float] | None, digits: int = 2) -> str:
    summary = mean_std(list(values)) if values else None
    if summary is None:
        return "-"
    mean, std = summary
    return (
        f"{mean:.{digits}f}" if len(values or ()) == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"
    )


def _chunk_table(report: CorpusReport, configurations: Sequence[str]) -> Table:
    table = Table(title="real-world corpus: false incidents per chunk")
    for column in ("chunk", "role", "host-hours", "events", *configurations):
        table.add_column(column, justify="left" if column in ("chunk", "role") else "right")
    for chunk in report.chunks:
        table.add_row(
            escape(chunk.chunk),
            chunk.role,
            f"{chunk.hours:.3f}",
            f"{chunk.events:,}",
            *(_mean_std([float(n) for n in chunk.incidents.get(c, [])], 1) for c in configurations),
        )
    return table


def _totals_table(report: CorpusReport, configurations: Sequence[str]) -> Table:
    seeds = ", ".join(map(str, report.seeds))
    table = Table(title=f"false incidents with the shipped defaults (model seeds {seeds})")
    for column in ("configuration", "chunks", "host-hours", "false incidents", "per host-hour"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    table.add_column("per 24 host-hours", justify="right")
    rows: list[tuple[str, tuple[str, ...]]] = [(c, ("test",)) for c in configurations]
    if report.hours(("development",)):  # looked at while fixing defects: never the test figure
        rows += [(c, ("development",)) for c in configurations]
    if "rules" in configurations:  # rules learn nothing: every chunk is test data for them
        rows.append(("rules", EVALUATED_ROLES))
    for configuration, roles in rows:
        rate = report.per_host_hour(configuration, roles)
        table.add_row(
            configuration,
            "all" if roles == EVALUATED_ROLES else roles[0],
            f"{report.hours(roles):.3f}",
            _mean_std([float(n) for n in report.totals(configuration, roles)], 1),
            "-" if rate is None else f"{rate[0]:.3f} ± {rate[1]:.3f}",
            "-" if rate is None else f"{rate[0] * 24:.1f} ± {rate[1] * 24:.1f}",
        )
    return table


def _incident_table(report: CorpusReport) -> Table:
    table = Table(title="false incidents (model and both: how many seeds raised each)")
    for column in ("configuration", "chunk", "severity", "title", "root cause", "seeds"):
        table.add_column(column)
    counted = Counter(
        (i.configuration, i.chunk, i.severity, i.title, i.root_cause) for i in report.incidents
    )
    for (configuration, chunk, severity, title, root_cause), seeds in counted.items():
        table.add_row(
            configuration,
            escape(chunk),
            severity,
            escape(title),
            escape(root_cause),
            "-" if configuration == "rules" else str(seeds),
        )
    return table


def corpus_command(
    corpus: Path,
    *,
    rules: Sequence[Path],
    seeds: Sequence[int],
    configurations: Sequence[str],
    as_json: Path | None,
) -> None:
    report = evaluate_corpus(
        corpus,
        rules=rules,
        seeds=seeds,
        configurations=configurations,
        progress=lambda line: console.print(escape(line)),
    )
    console.print(_chunk_table(report, configurations))
    console.print(_totals_table(report, configurations))
    console.print(_incident_table(report))
    if report.learning_processes:
        console.print(
            f"model: enabled by learning mode after a {report.learning_window_seconds / 60:.1f}"
            f"-minute window: trained on {report.learning_processes:,} processes, threshold "
            f"calibrated on the {report.calibration_processes:,} of its held-out tail "
            f"({_mean_std(report.thresholds, 3)})"
        )
    if as_json is not None:
        document = {
            "corpus": str(corpus),
            "seeds": report.seeds,
            "test_host_hours": report.test_hours,
            "development_host_hours": report.hours(("development",)),
            "all_host_hours": report.hours(EVALUATED_ROLES),
            "per_host_hour": {c: report.per_host_hour(c) for c in configurations},
            "per_host_hour_development": {
                c: report.per_host_hour(c, ("development",)) for c in configurations
            },
            "rules_per_host_hour_all_chunks": report.per_host_hour("rules", EVALUATED_ROLES),
            "chunks": [asdict(chunk) for chunk in report.chunks],
            "incidents": [asdict(incident) for incident in report.incidents],
            "learning_processes": report.learning_processes,
            "calibration_processes": report.calibration_processes,
            "learning_window_seconds": report.learning_window_seconds,
            "thresholds": report.thresholds,
        }
        as_json.write_text(json.dumps(document, indent=2) + "\n")
