"""Commands over recorded data and the graph store: ingest, convert, stats, trace, export,
demo.

The graph, storage and importer modules are imported inside the commands, so that
``provarmor --help`` and unrelated commands do not pay for them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.recorded_input import (
    FormatOption,
    exit_on_failed_inputs,
    format_of,
    importer_for,
    print_problems,
)
from provarmor.cli.terminal import escape
from provarmor.model.display import printable
from provarmor.model.errors import ConfigError

if TYPE_CHECKING:
    from rich.progress import Progress

    from provarmor.graph.noise import NoiseFilter
    from provarmor.graph.trace import Direction, TraceLimits, TraceResult
    from provarmor.pipeline.ingest import IngestResult
    from provarmor.storage.sqlite_graph import SqliteGraphStore

DEFAULT_DB = Path("provarmor.db")
console = Console()
DbOption = Annotated[Path, typer.Option("--db", help="Graph store (SQLite file).")]


def _open_store(db: Path, *, must_exist: bool = False) -> SqliteGraphStore:
    from provarmor.storage.sqlite_graph import SqliteGraphStore

    if must_exist and not db.exists():
        raise ConfigError(f"no graph store at {db} (run `provarmor ingest` first)")
    return SqliteGraphStore(db)


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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


def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files to ingest.", exists=True, dir_okay=False)
    ],
    format: FormatOption = None,
    db: DbOption = DEFAULT_DB,
    host: Annotated[
        str, typer.Option(help="Host id for data that does not name its host.")
    ] = "localhost",
    force: Annotated[
        bool, typer.Option(help="Ingest even if this content was ingested before.")
    ] = False,
) -> None:
    """Ingest recorded files into the graph store (the format is told from the content
    when --format is not given)."""
    from provarmor.pipeline.ingest import ingest_file
    from provarmor.sources.base import HostContext

    names = [format_of(path, format) for path in paths]
    graph = OPTIONS.load().graph
    store = _open_store(db)
    results: list[tuple[Path, IngestResult]] = []
    try:
        with _progress() as progress:
            for path, name in zip(paths, names, strict=True):
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
        print_problems(result.report)
        if result.resumed_batches:
            console.print(
                f"{escape(str(path))}: resumed an interrupted ingest "
                f"({result.resumed_batches:,} batches were already stored)",
                highlight=False,
            )
    exit_on_failed_inputs([result.report for _path, result in results])


def convert(
    path: Annotated[Path, typer.Argument(help="File to convert.", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file.")],
    format: FormatOption = None,
    binary: Annotated[
        bool, typer.Option(help="Write the compact binary form instead of NDJSON.")
    ] = False,
    host: Annotated[
        str, typer.Option(help="Host id for data that does not name its host.")
    ] = "localhost",
) -> None:
    """Convert a recorded file into canonical events (NDJSON, or the binary form)."""
    from provarmor.model.codec import encode_binary_frame, encode_binary_header, encode_ndjson
    from provarmor.sources.base import HostContext, IngestReport

    importer = importer_for(path, format)
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
    print_problems(report)
    exit_on_failed_inputs([report])


def stats(db: DbOption = DEFAULT_DB) -> None:
    """Summarise the graph store."""
    from provarmor.graph.render import format_ts

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


class AmbiguousTarget(ConfigError):
    """Several entities match the text given to ``trace``; ``candidates`` lists them."""

    def __init__(self, what: str, candidates: list[dict[str, object]]) -> None:
        super().__init__(f"{len(candidates)} entities match {what!r}; trace one by id")
        self.candidates = candidates


def _resolve_and_trace(
    store: SqliteGraphStore,
    what: str,
    *,
    direction: Direction,
    limits: TraceLimits,
    noise: NoiseFilter,
) -> TraceResult:
    """Trace from an event id, an entity id, an exact file path, or else the one entity
    whose label, path or command line contains ``what``."""
    from provarmor.graph.render import node_caption
    from provarmor.graph.trace import trace, trace_from_event

    result = trace_from_event(store, what, direction=direction, limits=limits, noise=noise)
    if result is not None:
        return result
    matches = store.find_nodes(what, limit=20)
    if not matches:
        raise ConfigError(f"no event or entity matches {what!r}")
    if len(matches) > 1:
        raise AmbiguousTarget(
            what,
            [
                {
                    "id": node.id,
                    "kind": node.kind.value,
                    "first_ts": node.first_ts,
                    "caption": node_caption(node),
                }
                for node in matches
            ],
        )
    return trace(store, matches[0].id, direction=direction, limits=limits, noise=noise)


def _print_candidates(problem: AmbiguousTarget) -> None:
    """One tab-separated line per candidate, written as is (never wrapped, cut or padded),
    so every id can be copied whole."""
    from provarmor.graph.render import format_ts

    lines = [printable(str(problem))]
    for candidate in problem.candidates:
        when = format_ts(int(str(candidate["first_ts"])))
        fields = (candidate["id"], candidate["kind"], when, candidate["caption"])
        # a file's id holds its path: host data too
        lines.append("\t".join(printable(str(field)) for field in fields))
    sys.stdout.write("\n".join(lines) + "\n")


def _json_out(document: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def trace_command(  # noqa: PLR0913
    what: Annotated[
        str,
        typer.Argument(help="Event id, entity id, file path, or text in a path/command line."),
    ],
    backward: Annotated[
        bool, typer.Option("--backward", "-b", help="Root cause (default).")
    ] = False,
    forward: Annotated[bool, typer.Option("--forward", help="Impact.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (also for errors and ambiguity).")
    ] = False,
    as_dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz DOT.")] = False,
    depth: Annotated[int, typer.Option(help="Maximum path length.")] = 50,
    max_nodes: Annotated[int, typer.Option(help="Stop after this many nodes.")] = 2000,
    show_all: Annotated[bool, typer.Option("--all", help="Keep noise and leaf files.")] = False,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Backward (root cause) or forward (impact) causality tracking that respects time.

    A file path that names a file exactly traces that file; text that matches several
    entities lists their full ids (exit code 1)."""
    from provarmor.graph.noise import NO_FILTER, NoiseFilter
    from provarmor.graph.render import to_dot, to_json, to_tree
    from provarmor.graph.trace import Direction, TraceLimits

    try:
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
    except AmbiguousTarget as problem:
        if as_json:
            _json_out({"error": str(problem), "candidates": problem.candidates})
        else:
            _print_candidates(problem)
        raise typer.Exit(1) from None
    except ConfigError as problem:
        if not as_json:
            raise
        _json_out({"error": str(problem)})
        raise typer.Exit(2) from None
    if as_json:
        _json_out(to_json(result))
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
    import msgspec

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


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(rich_help_panel=panel)(ingest)
    app.command(rich_help_panel=panel)(convert)
    app.command(rich_help_panel=panel)(stats)
    app.command(name="trace", rich_help_panel=panel)(trace_command)
    app.command(rich_help_panel=panel)(export)
