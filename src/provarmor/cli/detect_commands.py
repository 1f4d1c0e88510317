"""``provarmor detect`` (run rules over recorded data) and ``provarmor rules check``."""

from __future__ import annotations

import sys
from collections import Counter
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.graph_commands import Format, _check_format, _print_problems
from provarmor.detection.engine import detect
from provarmor.detection.sigma.checker import check_rules
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.suppress import SuppressingDetector, Suppression, parse_suppressions
from provarmor.model.alert import Alert
from provarmor.model.errors import ConfigError
from provarmor.outputs.alert_formats import FORMATS
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.registry import IMPORTERS

console = Console(stderr=True)
rules_app = typer.Typer(help="Detection rules.", no_args_is_help=True)


class OutputFormat(StrEnum):
    ecs = "ecs"
    ocsf = "ocsf"
    falco = "falco"


def bundled_rules() -> Path:
    """The rule pack shipped with ProvArmor."""
    return Path(str(resources.files("provarmor.data") / "rules"))


@rules_app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="Directory of Sigma rules.", exists=True)],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every rule.")] = False,
) -> None:
    """Load every Sigma rule under DIRECTORY and report loaded / unsupported (with reasons)."""
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


def detect_command(  # noqa: PLR0913
    paths: Annotated[
        list[Path], typer.Argument(help="Recorded files.", exists=True, dir_okay=False)
    ],
    format: Annotated[Format, typer.Option("--format", "-f", help="Input format.")] = Format.ndjson,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="Sigma rule files or directories (default: bundled)."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", help="Alert format.")
    ] = OutputFormat.ecs,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write alerts here.")] = None,
    host: Annotated[
        str, typer.Option(help="Host id for data that does not name it.")
    ] = "localhost",
    suppressions: Annotated[
        Path | None,
        typer.Option(help="YAML exceptions (by host, executable, lineage, path, user)."),
    ] = None,
) -> None:
    """Run Sigma rules over recorded files; alerts as JSON lines, summary on stderr.

    Repeated hits of a rule on the same process and object are merged into one alert with a
    count (``detection.dedup_window_seconds``); ``--suppressions`` applies exceptions."""
    importer = IMPORTERS[_check_format(format)]
    rule_paths = rules or [bundled_rules()]
    missing = [path for path in rule_paths if not path.exists()]
    if missing:
        raise ConfigError(f"no rules at {missing[0]}")
    sigma, report = SigmaDetector.from_paths(rule_paths)
    console.print(f"{len(report.loaded)} rules loaded, {len(report.unsupported)} unsupported")
    exceptions: tuple[Suppression, ...] = ()
    if suppressions is not None:
        exceptions = parse_suppressions(
            suppressions.read_text(encoding="utf-8"), source=str(suppressions)
        )
    settings = OPTIONS.load()["detection"]
    detector = SuppressingDetector(
        sigma,
        suppressions=exceptions,
        window_ns=int(settings.dedup_window_seconds * 1e9),
    )
    render = FORMATS[output.value]
    encoder = msgspec.json.Encoder()
    handle = out.open("wb") if out is not None else sys.stdout.buffer
    alerts: list[Alert] = []
    try:
        for path in paths:
            ingest = IngestReport(source=str(path))
            events = importer(path, report=ingest, host=HostContext(id=host))
            for alert in detect([detector], events):
                alerts.append(alert)
                handle.write(encoder.encode(render(alert)) + b"\n")
            _print_problems(ingest)
    finally:
        if out is not None:
            handle.close()
    console.print(_summary(alerts))
    stats = detector.stats
    suppressed, merged = sum(stats.suppressed.values()), sum(stats.duplicates.values())
    if suppressed or merged:
        console.print(
            f"suppressed {suppressed:,} alerts by exceptions, merged {merged:,} repeated hits "
            "into the alerts above"
        )


def register(app: typer.Typer) -> None:
    app.command(name="detect")(detect_command)
    app.add_typer(rules_app, name="rules")
