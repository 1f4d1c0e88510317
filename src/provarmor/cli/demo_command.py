"""``provarmor demo``: the main job on the embedded default, for now: ingest the bundled real
audit recording of a download -> chmod -> exec -> connect chain into SQLite, summarise the
graph, and trace the last outbound connection back to its root cause."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from provarmor.cli.graph_commands import Format, ingest, stats
from provarmor.graph.render import to_tree
from provarmor.graph.trace import Direction, trace_from_event
from provarmor.storage.sqlite_graph import SqliteGraphStore

SAMPLE = "attack-chain.audit.log"
console = Console()


def sample_path() -> Path:
    """The bundled sample recording (a real audit.log captured on a Debian 12 host)."""
    return Path(str(resources.files("provarmor.data") / "samples" / SAMPLE))


def demo(
    db: Annotated[Path, typer.Option("--db", help="Graph store to (re)create.")] = Path(
        "provarmor-demo.db"
    ),
) -> None:
    """Ingest the bundled sample, summarise it, and trace its last connection backward."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    sample = sample_path()
    console.print(Panel(f"ProvArmor demo: ingesting {escape(str(sample))}", expand=False))
    ingest([sample], format=Format.auditd, db=db, host="demo-host", force=True)
    stats(db=db)
    store = SqliteGraphStore(db)
    try:
        connect = store.last_edge(action="connect")
        if connect is None:
            console.print("[yellow]no outbound connection in the sample[/yellow]")
            return
        result = trace_from_event(store, connect.last_event, direction=Direction.BACKWARD)
    finally:
        store.close()
    assert result is not None
    console.rule("root cause of the last outbound connection (provarmor trace --backward)")
    for line in to_tree(result):
        console.print(escape(line), highlight=False, soft_wrap=True)
    console.rule()
    command = f"provarmor trace {connect.last_event} --db {db} --dot"
    console.print(f"next: [bold]{escape(command)}[/bold]")


def register(app: typer.Typer) -> None:
    app.command()(demo)
