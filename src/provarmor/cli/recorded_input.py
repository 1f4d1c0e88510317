"""The recorded files a command reads (``ingest``, ``convert``, ``detect``, ``demo``): the
``--format`` choice, the importer for a file, and what is printed about inputs that had
rejected, skipped or unread records.

The ``--format`` choices are the names of the importer registry, whose importers are loaded
on first use, so that ``provarmor --help`` does not pay for them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError
from provarmor.sources.registry import IMPORTERS, ImportFormat

if TYPE_CHECKING:
    from provarmor.sources.base import Importer, IngestReport

console = Console()
MAX_ERRORS_SHOWN = 10


FormatOption = Annotated[
    ImportFormat | None,
    typer.Option("--format", "-f", help="Input format (default: told from the content)."),
]


def format_of(path: Path, given: ImportFormat | None) -> str:
    """The importer name for ``path``: the one given, or the one its content shows."""
    if given is not None:
        return str(given.value)
    from provarmor.sources.sniff import sniff_format

    found = sniff_format(path)
    if found is None:
        raise ConfigError(
            f"cannot tell the format from the content; give --format ({', '.join(IMPORTERS)})",
            location=str(path),
        )
    return found


def importer_for(path: Path, given: ImportFormat | None) -> Importer:
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
