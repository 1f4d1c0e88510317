"""``provarmor demo``: the offline tour (no root needed), in two parts:

1. ingest the bundled real audit recording of a download -> chmod -> exec -> connect chain
   into SQLite, summarise the graph, and trace the last outbound connection back to its root
   cause;
2. run the whole analysis (graph, bundled Sigma rules, campaigns) over a bundled real lab
   recording of a multi-stage attack (the ``nodlink-ubuntu`` scenario, recorded by the eBPF
   agent on Debian 12) and print the incident with its attack story; its attack graph is
   written as SVG next to the database."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.detect_commands import incident_panel
from provarmor.cli.graph_commands import ingest, stats
from provarmor.cli.recorded_input import Format
from provarmor.cli.terminal import escape

SAMPLE = "attack-chain.audit.log"
LAB_SAMPLE = "lab-attack.ndjson.gz"
console = Console()


def sample_path(name: str = SAMPLE) -> Path:
    """A bundled sample recording (real captures made on a Debian 12 host)."""
    return Path(str(resources.files("provarmor.data") / "samples" / name))


def demo(
    db: Annotated[Path, typer.Option("--db", help="Graph store to (re)create.")] = Path(
        "provarmor-demo.db"
    ),
) -> None:
    """Ingest the bundled sample, summarise it, and trace its last connection backward."""
    from provarmor.graph.render import to_tree
    from provarmor.graph.trace import Direction, trace_from_event
    from provarmor.storage.sqlite_graph import SqliteGraphStore

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    sample = sample_path()
    console.print(Panel(f"ProvArmor demo: ingesting {escape(str(sample))}", expand=False))
    ingest([sample], format=Format("auditd"), db=db, host="demo-host", force=True)
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
    _incident_demo(db.with_name(db.stem + "-incident.svg"))


def _incident_demo(svg: Path) -> None:
    from provarmor.detection.sigma.loader import bundled_rules
    from provarmor.outputs.incident_formats import incident_svg
    from provarmor.pipeline.assembly import build_analysis, plan_from_config
    from provarmor.sources.base import HostContext, IngestReport
    from provarmor.sources.ndjson import read_ndjson

    sample = sample_path(LAB_SAMPLE)
    console.print(
        Panel(f"ProvArmor demo: detecting on a recorded attack {escape(str(sample))}", expand=False)
    )
    analysis = build_analysis(plan_from_config(OPTIONS.load(), rules=(bundled_rules(),)))
    report = IngestReport(source=str(sample))
    result = analysis.collect(read_ndjson(sample, report=report, host=HostContext()))
    incidents = result.incidents()
    console.print(
        f"{result.events:,} events, {len(result.alerts)} alerts, {len(incidents)} incidents"
    )
    for incident in incidents:
        console.print(Panel(incident_panel(incident), title=incident.id, expand=False))
    if incidents:
        svg.write_text(incident_svg(incidents[0]), encoding="utf-8")
        console.print(f"attack graph: [bold]{escape(str(svg))}[/bold]")


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(rich_help_panel=panel)(demo)
