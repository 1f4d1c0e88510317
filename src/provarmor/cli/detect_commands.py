"""``provarmor detect`` (run rules over recorded data) and ``provarmor rules check``."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.recorded_input import (
    FormatOption,
    exit_on_failed_inputs,
    importer_for,
    print_problems,
)
from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError
from provarmor.outputs.alert_formats import AlertFormat
from provarmor.outputs.incident_formats import IncidentFormat

if TYPE_CHECKING:
    from provarmor.detection.engine import Detector
    from provarmor.graph.logins import JoinCounters
    from provarmor.model.alert import Alert
    from provarmor.model.event import Event
    from provarmor.model.incident import Incident
    from provarmor.sources.base import IngestReport

console = Console(stderr=True)
ECS = AlertFormat("ecs")
JSON = IncidentFormat("json")
rules_app = typer.Typer(help="Detection rules.", no_args_is_help=True)


@rules_app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="Directory of Sigma rules.", exists=True)],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every rule.")] = False,
) -> None:
    """Load every Sigma rule under DIRECTORY and report loaded / unsupported (with reasons)."""
    from provarmor.detection.sigma.checker import check_rules

    report = check_rules(directory)
    table = Table(title=f"Sigma rules in {escape(str(directory))}")
    table.add_column("result")
    table.add_column("rules", justify="right")
    table.add_row("loaded and evaluated", f"{len(report.loaded)}")
    for reason, count in report.reasons().most_common():
        table.add_row(f"unsupported: {escape(reason)}", f"{count}")
    table.add_row("errors", f"{len(report.errors)}")
    Console().print(table)
    Console().print(
        f"{len(report.loaded)}/{report.total} loaded ({100 * report.loaded_fraction:.1f} %)"
    )
    for error in report.errors:
        Console().print(f"[red]error[/red] {escape(str(error))}", highlight=False)
    if verbose:
        for problem in report.unsupported:
            Console().print(f"unsupported {escape(str(problem))}", highlight=False)


def _summary(alerts: list[Alert]) -> Table:
    table = Table(title=f"{len(alerts)} alerts")
    for column in ("rule", "level", "ATT&CK", "hits"):
        table.add_column(column)
    counts: Counter[str] = Counter()
    first: dict[str, Alert] = {}
    for alert in alerts:
        counts[alert.rule_id] += alert.count
        first.setdefault(alert.rule_id, alert)
    for rule_id, hits in counts.most_common():
        alert = first[rule_id]
        techniques = ", ".join(f"{ref.id} {ref.name}" for ref in alert.techniques)
        table.add_row(escape(alert.rule_title), alert.level, escape(techniques), str(hits))
    return table


MAX_CONTEXT_LINES = 4


def incident_panel(incident: Incident) -> str:
    root = next((n for n in incident.nodes if n.id == incident.root_cause), None)
    techniques = ", ".join(f"{ref.id} {ref.name}" for ref in incident.techniques[:12])
    lines = [
        f"[bold]{escape(incident.title)}[/bold]  severity {incident.severity}, "
        f"score {incident.score:.1f}, {len(incident.nodes)} nodes, {len(incident.steps)} steps",
        f"root cause: {escape(root.label if root is not None else incident.root_cause)}",
        f"tactics: {escape(', '.join(ref.name for ref in incident.tactics))}",
        f"techniques: {escape(techniques)}",
        escape(incident.summary),
        *(f"context: {escape(line)}" for line in incident.context[:MAX_CONTEXT_LINES]),
    ]
    return "\n".join(lines)


def _print_join_stats(counters: JoinCounters) -> None:
    """How many host log events named a process the sensor saw (:mod:`.graph.logins`)."""
    if counters.log_events:
        console.print(
            f"host logs: {counters.joined:,} of {counters.log_events:,} log events joined to "
            f"the sensor's processes ({counters.logins:,} logins), {counters.unmatched:,} "
            f"named a process the sensor did not see or had forgotten "
            f"({counters.processes_forgotten:,} processes forgotten)"
        )


def _print_filter_stats(detectors: Sequence[Detector]) -> None:
    from provarmor.detection.context import ContextDetector
    from provarmor.detection.suppress import SuppressingDetector

    for detector in detectors:
        if isinstance(detector, ContextDetector):
            _print_filter_stats(detector.detectors)
            context = detector.stats
            lowered, own = context.lowered.total(), context.own_dropped.total()
            if lowered or own or context.kept:
                console.print(
                    f"lineage context: lowered {lowered:,} alerts, kept {context.kept.total():,} "
                    f"(raising context), dropped {own:,} of ProvArmor's own processes"
                )
        if isinstance(detector, SuppressingDetector):
            stats = detector.stats
            suppressed, merged = sum(stats.suppressed.values()), sum(stats.duplicates.values())
            if suppressed or merged:
                console.print(
                    f"suppressed {suppressed:,} alerts by exceptions, merged {merged:,} "
                    "repeated hits into the alerts above"
                )


def detect_command(  # noqa: PLR0913
    paths: Annotated[
        list[Path], typer.Argument(help="Recorded files.", exists=True, dir_okay=False)
    ],
    format: FormatOption = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="Sigma rule files or directories (default: bundled)."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Anomaly model (provarmor train).")
    ] = None,
    alert_format: Annotated[
        AlertFormat, typer.Option("--alert-format", help="Alert format.")
    ] = ECS,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write alerts here.")] = None,
    incidents_out: Annotated[
        Path | None,
        typer.Option(
            "--incidents", help="Write incidents here (a file; a directory for dot and svg)."
        ),
    ] = None,
    incident_format: Annotated[IncidentFormat, typer.Option(help="Incident format.")] = JSON,
    host: Annotated[
        str, typer.Option(help="Host id for data that does not name it.")
    ] = "localhost",
    suppressions: Annotated[
        Path | None,
        typer.Option(help="YAML exceptions (by host, executable, lineage, path, user)."),
    ] = None,
) -> None:
    """Run Sigma rules (and the anomaly model) over recorded files, connect the signals
    through the provenance graph and print the incidents with their attack story.

    Alerts go out as JSON lines; repeated hits of a rule on the same process and object are
    merged into one alert with a count (setting detection.dedup_window_seconds);
    --suppressions applies exceptions. The input format is told from the content unless
    --format is given."""
    from provarmor.detection.anomaly.bundle import load_bundle
    from provarmor.detection.sigma.loader import bundled_rules
    from provarmor.detection.suppress import Suppression, parse_suppressions
    from provarmor.outputs.files import AlertFile, IncidentFile
    from provarmor.pipeline.analysis import IncidentUpdate
    from provarmor.pipeline.assembly import build_analysis, describe_rule, plan_from_config
    from provarmor.sources.base import HostContext, IngestReport

    importers = [importer_for(path, format) for path in paths]
    rule_paths = rules or [bundled_rules()]
    missing = [path for path in rule_paths if not path.exists()]
    if missing:
        raise ConfigError(f"no rules at {missing[0]}")
    exceptions: tuple[Suppression, ...] = ()
    if suppressions is not None:
        exceptions = parse_suppressions(
            suppressions.read_text(encoding="utf-8"), source=str(suppressions)
        )
    plan = plan_from_config(
        OPTIONS.load(),
        rules=rule_paths,
        model=load_bundle(model) if model is not None else None,
        suppressions=exceptions,
        merge_repeats=True,
    )
    analysis = build_analysis(plan)
    output = AlertFile(out if out is not None else sys.stdout.buffer, format=alert_format)
    alerts: list[Alert] = []
    latest: dict[str, Incident] = {}
    reports: list[IngestReport] = []

    def events() -> Iterator[Event]:
        for path, importer in zip(paths, importers, strict=True):
            ingest = IngestReport(source=str(path))
            reports.append(ingest)
            yield from importer(path, report=ingest, host=HostContext(id=host))

    try:
        for finding in analysis.run(events()):
            if isinstance(finding, IncidentUpdate):
                latest[finding.incident.id] = finding.incident
                continue
            alerts.append(finding)
            output.alert(finding)
    finally:
        output.close()
    for ingest in reports:
        print_problems(ingest)
    console.print(_summary(alerts))
    _print_filter_stats(analysis.detectors)
    _print_join_stats(analysis.builder.join.counters)
    incidents = sorted(latest.values(), key=lambda i: i.first_ts)
    console.print(f"{len(incidents)} incidents ({describe_rule(plan.effective_rule())})")
    for incident in incidents:
        console.print(Panel(incident_panel(incident), title=incident.id, expand=False))
    if incidents_out is not None:
        incident_output = IncidentFile(incidents_out, format=incident_format)
        try:
            for incident in incidents:
                incident_output.incident(incident)
        finally:
            incident_output.close()
    exit_on_failed_inputs(reports)


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(name="detect", rich_help_panel=panel)(detect_command)


def register_rules(app: typer.Typer, *, panel: str) -> None:
    app.add_typer(rules_app, name="rules", rich_help_panel=panel)
