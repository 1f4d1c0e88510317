"""Commands over recorded data and the graph store: ingest, convert, stats, trace, export,
demo."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.terminal import escape
from provarmor.graph.noise import NO_FILTER, NoiseFilter
from provarmor.graph.render import format_ts, node_caption, to_dot, to_json, to_tree
from provarmor.graph.trace import Direction, TraceLimits, TraceResult, trace, trace_from_event
from provarmor.model.codec import encode_binary_frame, encode_binary_header, encode_ndjson
from provarmor.model.errors import ConfigError
from provarmor.pipeline.ingest import IngestResult, ingest_file
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.registry import IMPORTERS
from provarmor.storage.sqlite_graph import SqliteGraphStore

DEFAULT_DB = Path("provarmor.db")
console = Console()
DbOption = Annotated[Path, typer.Option("--db", help="Graph store (SQLite file).")]


class Format(StrEnum):
    auditd = "auditd"
    cdm = "cdm"
    sysdig = "sysdig"
    ndjson = "ndjson"


def _check_format(format: Format) -> str:
    if format.value not in IMPORTERS:
        raise ConfigError(f"the {format.value} importer is not available in this build")
    return format.value


def _open_store(db: Path, *, must_exist: bool = False) -> SqliteGraphStore:
    if must_exist and not db.exists():
        raise ConfigError(f"no graph store at {db} (run `provarmor ingest` first)")
    return SqliteGraphStore(db)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _report_table(results: list[tuple[Path, IngestResult]]) -> Table:
    table = Table(title="ingest", show_lines=False)
    for column in (
        "file",
        "records",
        "events",
        "rejected",
        "skipped",
        "edges",
        "merged",
        "events/s",
    ):
        table.add_column(column, justify="left" if column == "file" else "right")
    for path, result in results:
        if result.skipped_as_duplicate:
            table.add_row(escape(str(path)), "-", "-", "-", "already ingested", "-", "-", "-")
            continue
        report, counters = result.report, result.counters
        rate = report.events / result.seconds if result.seconds else 0.0
        table.add_row(
            escape(str(path)),
            f"{report.records:,}",
            f"{report.events:,}",
            f"{report.rejected:,}",
            f"{sum(report.skipped.values()):,}",
            f"{counters.edges_created:,}",
            f"{counters.edges_merged:,}",
            f"{rate:,.0f}",
        )
    return table


def _print_problems(report: IngestReport) -> None:
    if report.stopped:
        console.print(f"[red]not read to the end:[/red] {escape(report.stopped)}", highlight=False)
    for error in report.errors[:10]:
        console.print(f"[yellow]rejected[/yellow] {escape(error)}", highlight=False)
    if report.rejected > 10:
        console.print(f"[yellow]... and {report.rejected - 10:,} more rejected records[/yellow]")
    if report.dropped_fields:
        fields = ", ".join(f"{name} ({count:,})" for name, count in report.dropped_fields.items())
        console.print(f"[cyan]dropped at import (never passed on):[/cyan] {escape(fields)}")
    if report.skipped:
        reasons = ", ".join(f"{name} ({count:,})" for name, count in report.skipped.most_common(8))
        console.print(f"skipped on purpose: {escape(reasons)}", highlight=False)


def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files to ingest.", exists=True, dir_okay=False)
    ],
    format: Annotated[Format, typer.Option("--format", "-f", help="Input format.")],
    db: DbOption = DEFAULT_DB,
    host: Annotated[
        str, typer.Option(help="Host id for data that does not name its host.")
    ] = "localhost",
    force: Annotated[
        bool, typer.Option(help="Ingest even if this content was ingested before.")
    ] = False,
) -> None:
    """Ingest recorded files into the graph store."""
    name = _check_format(format)
    graph = OPTIONS.load()["graph"]
    store = _open_store(db)
    results: list[tuple[Path, IngestResult]] = []
    try:
        with _progress() as progress:
            for path in paths:
                task = progress.add_task(f"{path.name}", total=None)
                result = ingest_file(
                    path,
                    format=name,
                    store=store,
                    host=HostContext(id=host),
                    force=force,
                    settings=graph,
                    progress=lambda n, task=task: progress.advance(task, n),  # type: ignore[misc]
                )
                results.append((path, result))
    finally:
        store.close()
    console.print(_report_table(results))
    for path, result in results:
        _print_problems(result.report)
        if result.resumed_batches:
            console.print(
                f"{escape(str(path))}: resumed an interrupted ingest "
                f"({result.resumed_batches:,} batches were already stored)",
                highlight=False,
            )
    exit_on_failed_inputs([result.report for _path, result in results])


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


def convert(
    path: Annotated[Path, typer.Argument(help="File to convert.", exists=True, dir_okay=False)],
    format: Annotated[Format, typer.Option("--format", "-f", help="Input format.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file.")],
    binary: Annotated[
        bool, typer.Option(help="Write the compact binary form instead of NDJSON.")
    ] = False,
    host: Annotated[
        str, typer.Option(help="Host id for data that does not name its host.")
    ] = "localhost",
) -> None:
    """Convert a recorded file into canonical events (NDJSON, or the binary form)."""
    importer = IMPORTERS[_check_format(format)]
    report = IngestReport(source=str(path))
    with out.open("wb") as handle, _progress() as progress:
        task = progress.add_task(path.name, total=None)
        events = importer(path, report=report, host=HostContext(id=host))
        if binary:
            handle.write(encode_binary_header())
            for event in events:
                handle.write(encode_binary_frame(event))
                progress.advance(task)
        else:
            batch = []
            for event in events:
                batch.append(event)
                if len(batch) >= 4096:
                    handle.write(encode_ndjson(batch))
                    progress.advance(task, len(batch))
                    batch = []
            handle.write(encode_ndjson(batch))
    console.print(
        f"wrote {report.events:,} events to {escape(str(out))} "
        f"({report.records:,} records read, {report.rejected:,} rejected)"
    )
    _print_problems(report)
    exit_on_failed_inputs([report])


def stats(db: DbOption = DEFAULT_DB) -> None:
    """Summarise the graph store."""
    store = _open_store(db, must_exist=True)
    try:
        summary = store.stats()
    finally:
        store.close()
    table = Table(title=f"graph store {escape(str(db))}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for kind, count in sorted(summary.nodes_by_kind.items()):
        table.add_row(f"{escape(kind)} nodes", f"{count:,}")
    for action, count in sorted(summary.edges_by_action.items(), key=lambda item: -item[1]):
        table.add_row(f"{escape(action)} events", f"{count:,}")
    table.add_row("events indexed", f"{summary.events_indexed:,}")
    table.add_row("sensor gaps", f"{summary.gaps:,}")
    console.print(table)
    if summary.first_ts:
        console.print(f"time span: {format_ts(summary.first_ts)} .. {format_ts(summary.last_ts)}")


def _resolve_and_trace(
    store: SqliteGraphStore,
    what: str,
    *,
    direction: Direction,
    limits: TraceLimits,
    noise: NoiseFilter,
) -> TraceResult:
    result = trace_from_event(store, what, direction=direction, limits=limits, noise=noise)
    if result is not None:
        return result
    matches = store.find_nodes(what, limit=20)
    if not matches:
        raise ConfigError(f"no event or entity matches {what!r}")
    if len(matches) > 1:
        table = Table(title=f"{len(matches)} entities match {escape(what)!r}; trace one by id")
        for column in ("id", "kind", "first seen", "what"):
            table.add_column(column)
        for node in matches:
            table.add_row(
                escape(node.id),
                node.kind.value,
                format_ts(node.first_ts),
                escape(node_caption(node)),
            )
        console.print(table)
        raise typer.Exit(1)
    return trace(store, matches[0].id, direction=direction, limits=limits, noise=noise)


def trace_command(  # noqa: PLR0913
    what: Annotated[
        str, typer.Argument(help="Event id, entity id, or text in a path/command line.")
    ],
    backward: Annotated[
        bool, typer.Option("--backward", "-b", help="Root cause (default).")
    ] = False,
    forward: Annotated[bool, typer.Option("--forward", "-f", help="Impact.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz DOT.")] = False,
    depth: Annotated[int, typer.Option(help="Maximum path length.")] = 50,
    max_nodes: Annotated[int, typer.Option(help="Stop after this many nodes.")] = 2000,
    show_all: Annotated[bool, typer.Option("--all", help="Keep noise and leaf files.")] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Backward (root cause) or forward (impact) causality tracking that respects time."""
    if backward and forward:
        raise ConfigError("choose one of --backward and --forward")
    direction = Direction.FORWARD if forward else Direction.BACKWARD
    limits = TraceLimits(max_depth=depth, max_nodes=max_nodes, keep_leaves=show_all)
    store = _open_store(db, must_exist=True)
    try:
        result = _resolve_and_trace(
            store,
            what,
            direction=direction,
            limits=limits,
            noise=NO_FILTER if show_all else NoiseFilter(),
        )
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(to_json(result), indent=2) + "\n")
        return
    if as_dot:
        sys.stdout.write(to_dot(result))
        return
    for line in to_tree(result):
        console.print(escape(line), highlight=False, soft_wrap=True)
    hidden = ", ".join(f"{count} {why.replace('_', ' ')}" for why, count in result.hidden.items())
    console.print(
        f"[dim]{len(result.nodes)} nodes, {len(result.edges)} edges"
        f"{'; hidden: ' + hidden if hidden else ''}"
        f"{'; TRUNCATED: ' + result.truncated if result.truncated else ''}[/dim]"
    )


def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (default: stdout).")] = Path(
        "-"
    ),
    db: DbOption = DEFAULT_DB,
) -> None:
    """Export the whole graph as JSON lines: one node or edge per line."""
    store = _open_store(db, must_exist=True)
    handle = sys.stdout.buffer if str(out) == "-" else out.open("wb")
    encoder = msgspec.json.Encoder()
    try:
        for node in store.iter_nodes():
            handle.write(encoder.encode({"type": "node", **msgspec.to_builtins(node)}) + b"\n")
        for edge in store.iter_edges():
            handle.write(encoder.encode({"type": "edge", **msgspec.to_builtins(edge)}) + b"\n")
    finally:
        store.close()
        if handle is not sys.stdout.buffer:
            handle.close()


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(convert)
    app.command()(stats)
    app.command(name="trace")(trace_command)
    app.command()(export)
