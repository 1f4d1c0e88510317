"""``provarmor agent`` (run the live agent) and ``provarmor agent status``."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from provarmor.agent.runner import Agent
from provarmor.agent.settings import AgentSettings, SensorChoice
from provarmor.agent.status import read_status
from provarmor.cli.config_command import OPTIONS

console = Console()
agent_app = typer.Typer(help="The live endpoint agent (root).")


def _settings(sensor: SensorChoice | None, state_dir: Path | None) -> AgentSettings:
    settings: AgentSettings = OPTIONS.load()["agent"]
    changes: dict[str, object] = {}
    if sensor is not None:
        changes["sensor"] = sensor
    if state_dir is not None:
        changes["state_dir"] = state_dir
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


@agent_app.callback(invoke_without_command=True)
def agent(
    context: typer.Context,
    sensor: Annotated[
        SensorChoice | None, typer.Option(help="Sensor backend (default from config: auto).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write canonical NDJSON here instead of the store.")
    ] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Spool, status and store.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Collect live kernel events into the local store (or --out), until SIGINT/SIGTERM."""
    if context.invoked_subcommand is not None:
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings(sensor, state_dir)
    graph = OPTIONS.load()["graph"]
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    agent_run = Agent(settings, graph=graph, out=out)
    console.print(f"starting agent (sensor {settings.sensor.value}), state in {settings.state_dir}")
    status = agent_run.run(stop, duration=duration)
    console.print(f"sensor: {status.sensor}")
    _print_counters(status.counters, status.rates)


def _print_counters(counters: dict[str, int], rates: dict[str, float]) -> None:
    table = Table(title="agent counters")
    table.add_column("counter")
    table.add_column("total", justify="right")
    table.add_column("per second", justify="right")
    for key in sorted(counters):
        table.add_row(key, f"{counters[key]:,}", f"{rates.get(key, 0.0):,.1f}")
    console.print(table)


@agent_app.command()
def status(
    state_dir: Annotated[Path | None, typer.Option(help="The agent's state directory.")] = None,
) -> None:
    """Show the running agent's sensor, counters with rates, and drops."""
    settings = _settings(None, state_dir)
    current = read_status(settings.state_dir)
    age = time.time() - current.updated_at
    state = "running" if current.running else "stopped"
    if current.running and age > 5 * settings.status_interval_seconds:
        state = f"NOT RESPONDING (last update {age:.0f} s ago)"
    console.print(f"agent pid {current.pid}, sensor [bold]{current.sensor}[/bold], {state}")
    if current.blind:
        console.print(f"[red bold]SENSOR BLIND[/red bold]: {current.blind_reason}")
    _print_counters(current.counters, current.rates)


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
