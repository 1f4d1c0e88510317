"""``provarmor up``: the main job on the embedded default, on this host, in one process.

The manager (API and console, SQLite under ``--state-dir``) serves on loopback; the live agent
(eBPF or Linux audit) enrols with it over HTTP like any remote agent and uploads its spool;
the manager runs the analysis (graph, Sigma rules, the anomaly model, campaigns, incidents).
Without an operator's model the manager learns this host's (learning mode): `up` prints the
time left of the learning window, and again when the model is enabled or relearned. It
prints the console URL and a login token. With
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
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from provarmor.agent.settings import SensorChoice
from provarmor.cli.agent_commands import (
    agent_settings,
    announce_ready,
    describe_learning,
    format_duration,
    print_counters,
    stopper,
    uplink_sink,
)
from provarmor.cli.config_command import OPTIONS
from provarmor.cli.server_commands import (
    UP_MANAGER_DIR,
    detection_kit,
    open_manager_store,
    server_settings,
)
from provarmor.cli.terminal import escape
from provarmor.manager.auth import Role
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import seconds_to_ns
from provarmor.sources.owngroup import own_group
from provarmor.sources.procfs import read_host_identity
from provarmor.storage.private import private_dir

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from provarmor.manager.ingest import Ingestor

console = Console()
log = logging.getLogger(__name__)
SERVER_START_TIMEOUT_S = 30.0
SENSOR_SETTLE_S = 12.0
"""bpftrace needs several seconds to attach its probes; the demo attack waits this long."""
LEARNING_REPORT_S = 600.0
"""While learning, the time left is printed this often (and at every change of phase)."""


def _serve(app: FastAPI, *, host: str, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="manager", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigError(f"the manager did not start on {host}:{port}", location="--listen")
        time.sleep(0.05)
    return server, thread


def announce(out: Console, *, url: str, token: str) -> None:
    """Print the console address and the login token, each on one line that is never
    wrapped, whatever the terminal width: a token copied from a wrapped line is refused."""
    out.print(f"console: [bold]{escape(url)}/[/bold]", soft_wrap=True)
    out.print(f"login token: [bold]{token}[/bold]", soft_wrap=True, highlight=False)


def _demo_attack(stop: threading.Event, scenario: str) -> None:
    from provarmor.lab.runner import NullRecorder, run_lab

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


def _report_learning(stop: threading.Event, ingestor: Ingestor, host_id: str) -> None:
    """Print the learning state when the window starts, every ``LEARNING_REPORT_S`` while
    it runs, and when a model version is enabled."""
    shown: tuple[object, ...] = ()
    last = 0.0
    while not stop.wait(2.0):
        learning = ingestor.learning_status(host_id)
        if learning is None:
            continue
        key = (learning.get("phase"), learning.get("model_version"), learning.get("waiting"))
        started = bool(learning.get("window_start_ns"))
        due = time.monotonic() - last >= LEARNING_REPORT_S
        if started and (key != shown or due):
            console.print(escape(describe_learning(learning)), soft_wrap=True)
            shown, last = key, time.monotonic()


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
    with own_group():  # the agent, the manager and the lab's set-up: marked at the source
        _run(
            state_dir=state_dir,
            listen=listen,
            sensor=sensor,
            demo_attack=demo_attack,
            duration=duration,
        )


def _run(
    *,
    state_dir: Path,
    listen: str,
    sensor: SensorChoice | None,
    demo_attack: str | None,
    duration: float | None,
) -> None:
    from provarmor.agent.runner import Agent
    from provarmor.manager.app import create_app
    from provarmor.manager.routes.tokens import create_token
    from provarmor.manager.tls import check_plain_http
    from provarmor.response.settings import ResponseSettings

    settings = server_settings(state_dir=state_dir / UP_MANAGER_DIR, listen=listen)
    host, port = settings.listen_address()
    check_plain_http(host, tls=False, insecure=False)  # up serves plain HTTP: loopback only
    private_dir(state_dir)
    store = open_manager_store(settings)
    kit = detection_kit(settings)
    app = create_app(settings, store, kit=kit, retention=OPTIONS.load().retention)
    server, thread = _serve(app, host=host, port=port)
    url = f"http://{host}:{port}"
    login = create_token(store, role=Role.ADMIN, label="provarmor up login")
    enrol = create_token(store, role=Role.ENROLL, valid_ns=seconds_to_ns(600))
    agent = agent_settings(sensor, state_dir / "agent")
    responding = ResponseSettings(state_dir=agent.state_dir / "response")
    sink = uplink_sink(url, agent, responding, token=enrol.token, ca=None)
    announce(console, url=url, token=login.token)
    stop = threading.Event()
    signal.signal(signal.SIGINT, stopper(stop))
    signal.signal(signal.SIGTERM, stopper(stop))
    if demo_attack:
        threading.Thread(target=_demo_attack, args=(stop, demo_attack), daemon=True).start()
    if kit.learning is not None:
        ingestor = app.state.context.ingestor
        console.print(
            f"anomaly model: learning this host's baseline for "
            f"{format_duration(kit.learning.window_seconds)} (event time) before it is enabled",
            soft_wrap=True,
        )
        host_id = read_host_identity().id
        threading.Thread(
            target=_report_learning, args=(stop, ingestor, host_id), daemon=True
        ).start()
    try:
        status = Agent(agent, sinks=[sink]).run(stop, duration=duration, on_ready=announce_ready)
        print_counters(status.counters, status.rates)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.context.ingestor.close()
        store.close()


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(rich_help_panel=panel)(up)
