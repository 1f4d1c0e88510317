"""The recorded files a command reads (``ingest``, ``convert``, ``detect``, ``demo``): the
``--format`` choice, the importer for a file, and what is printed about inputs that had
rejected, skipped or unread records.

Importer modules are imported inside the functions, so that ``provarmor --help`` does not pay
for them."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError

if TYPE_CHECKING:
    from provarmor.sources.base import Importer, IngestReport

console = Console()
MAX_ERRORS_SHOWN = 10


class Format(StrEnum):
    auditd = "auditd"
    cdm = "cdm"
    sysdig = "sysdig"
    ndjson = "ndjson"
    journal = "journal"
    syslog = "syslog"


FormatOption = Annotated[
    Format | None,
    typer.Option("--format", "-f", help="Input format (default: told from the content)."),
]


def _check_format(format: Format) -> str:
    from provarmor.sources.registry import IMPORTERS

    if format.value not in IMPORTERS:
        raise ConfigError(f"the {format.value} importer is not available in this build")
    return format.value


def format_of(path: Path, given: Format | None) -> str:
    """The importer name for ``path``: the one given, or the one its content shows."""
    if given is not None:
        return _check_format(given)
    from provarmor.sources.sniff import sniff_format

    found = sniff_format(path)
    if found is None:
        raise ConfigError(
            "cannot tell the format from the content; give --format "
            f"({', '.join(item.value for item in Format)})",
            location=str(path),
        )
    return _check_format(Format(found))


def importer_for(path: Path, given: Format | None) -> Importer:
    from provarmor.sources.registry import IMPORTERS

    return IMPORTERS[format_of(path, given)]


def print_problems(report: IngestReport) -> None:
    """What an input did not pass on: where reading stopped, the first rejected records,
    fields dropped at import and records skipped on purpose."""
    if report.stopped:
        console.print(f"[red]not read to the end:[/red] {escape(report.stopped)}", highlight=False)
    for error in report.errors[:MAX_ERRORS_SHOWN]:
        console.print(f"[yellow]rejected[/yellow] {escape(error)}", highlight=False)
    if report.rejected > MAX_ERRORS_SHOWN:
        console.print(
            f"[yellow]... and {report.rejected - MAX_ERRORS_SHOWN:,} more rejected records[/yellow]"
        )
    if report.dropped_fields:
        fields = ", ".join(f"{name} ({count:,})" for name, count in report.dropped_fields.items())
        console.print(f"[cyan]dropped at import (never passed on):[/cyan] {escape(fields)}")
    if report.skipped:
        reasons = ", ".join(f"{name} ({count:,})" for name, count in report.skipped.most_common(8))
        console.print(f"skipped on purpose: {escape(reasons)}", highlight=False)


def exit_on_failed_inputs(reports: list[IngestReport]) -> None:
    """Exit 1 naming every input whose records were all rejected or that was not read to
    its end (the rest of the run has been done and reported)."""
    failed = [
        report for report in reports if report.stopped or (report.rejected and not report.events)
    ]
    for report in failed:
        why = "not read to the end" if report.stopped else "every record was rejected"
        console.print(
            f"[red]error:[/red] {escape(report.source)}: {why} "
            f"({report.rejected:,} rejected, {report.events:,} events)",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)
