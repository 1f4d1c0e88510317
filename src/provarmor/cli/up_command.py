"""``provarmor up``: the main job on the embedded default, on this host, in one process.

The manager (API and console, SQLite under ``--state-dir``) serves on loopback; the live agent
(eBPF or Linux audit) enrols with it over HTTP like any remote agent and uploads its spool;
the manager runs the analysis (graph, Sigma rules, the anomaly model when configured,
campaigns, incidents). It prints the console URL and a login token. With
``--demo-attack`` it also runs one lab scenario (real attack steps against the lab's own
vulnerable web application, on loopback and lab namespaces only, cleaned up afterwards) once
the sensor is up, so the first visit shows a real incident.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from rich.console import Console

from provarmor.agent.runner import Agent
from provarmor.agent.settings import SensorChoice
from provarmor.cli.agent_commands import agent_settings, print_counters, uplink_sink
from provarmor.cli.server_commands import open_manager_store, server_settings
from provarmor.cli.terminal import escape
from provarmor.lab.runner import NullRecorder, run_lab
from provarmor.manager.app import create_app
from provarmor.manager.auth import Role
from provarmor.manager.routes.tokens import create_token
from provarmor.model.errors import ConfigError

console = Console()
log = logging.getLogger(__name__)
SERVER_START_TIMEOUT_S = 30.0
SENSOR_SETTLE_S = 12.0
"""bpftrace needs several seconds to attach its probes; the demo attack waits this long."""


def _serve(app: FastAPI, *, host: str, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="manager", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigError(f"the manager did not start on {host}:{port}", location="--listen")
        time.sleep(0.05)
    return server, thread


def _demo_attack(stop: threading.Event, scenario: str) -> None:
    if stop.wait(SENSOR_SETTLE_S):
        return
    console.print(f"running the demo attack [bold]{escape(scenario)}[/bold] (lab, loopback only)")
    with tempfile.TemporaryDirectory(prefix="provarmor-up-lab-") as scratch:
        try:
            run_lab(scenario, out_dir=Path(scratch) / "run", recorder=NullRecorder(), seed=1)
        except Exception as exc:  # the lab reports its own failures; the job goes on
            log.warning("demo attack failed: %s", exc)
            return
    console.print("demo attack finished: its incident appears in the console within seconds")


def up(
    state_dir: Annotated[
        Path, typer.Option(help="Manager database, per-host graphs, agent spool.")
    ] = Path("provarmor-state"),
    listen: Annotated[str, typer.Option(help="Console/API address (loopback).")] = (
        "127.0.0.1:8443"
    ),
    sensor: Annotated[SensorChoice | None, typer.Option(help="Sensor backend.")] = None,
    demo_attack: Annotated[
        str | None,
        typer.Option(help="Run this lab scenario once the sensor is up (e.g. nodlink-ubuntu)."),
    ] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Run agent + manager + console on this host (root), until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    settings = server_settings(state_dir=state_dir / "manager", listen=listen)
    host, port = settings.listen_address()
    store = open_manager_store(settings)
    app = create_app(settings, store)
    server, thread = _serve(app, host=host, port=port)
    url = f"http://{host}:{port}"
    login = create_token(store, role=Role.ADMIN, label="provarmor up login")
    enrol = create_token(store, role=Role.ENROLL, valid_ns=600 * 1_000_000_000)
    agent = agent_settings(sensor, state_dir / "agent")
    sink = uplink_sink(url, agent, token=enrol.token, ca=None)
    console.print(f"console: [bold]{url}/[/bold]   login token: [bold]{login.token}[/bold]")
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    if demo_attack:
        threading.Thread(target=_demo_attack, args=(stop, demo_attack), daemon=True).start()
    try:
        status = Agent(agent, sinks=[sink]).run(stop, duration=duration)
        print_counters(status.counters, status.rates)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.context.ingestor.close()
        store.close()


def register(app: typer.Typer) -> None:
    app.command()(up)
