"""``provarmor cluster up|status|down``: cluster mode on one machine (the parts and their
files: :mod:`provarmor.cli.cluster`); the embedded ``provarmor up`` needs none of it."""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from provarmor.cli.cluster import (
    Cluster,
    alive,
    provarmor_command,
    read_state,
    stop_recorded,
)
from provarmor.cli.config_command import OPTIONS
from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError

console = Console(stderr=True, highlight=False, soft_wrap=True)
cluster_app = typer.Typer(
    help="Cluster mode: bus, database, workers and manager on this machine.",
    no_args_is_help=True,
)
log = logging.getLogger("provarmor.cluster")

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="The cluster's directory (default from config: cluster.state_dir)."),
]
POLL_S = 0.5


def _settings(**changes: object) -> Cluster:
    config = OPTIONS.load()
    given = {key: value for key, value in changes.items() if value is not None}
    settings = dataclasses.replace(config.cluster, **given)  # type: ignore[arg-type]
    return Cluster(settings=settings, provarmor=provarmor_command(OPTIONS.path, OPTIONS.overrides))


class Stop(Exception):
    """SIGINT or SIGTERM arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    del frame
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


@cluster_app.command()
def up(  # noqa: PLR0913 (one argument per command-line option)
    state_dir: DirOption = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes, one partition each.")
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(min=1, help="Bus partitions (default: one per worker; fixed once made)."),
    ] = None,
    listen: Annotated[str | None, typer.Option(help="host:port of the manager.")] = None,
    bus_listen: Annotated[str | None, typer.Option(help="host:port of nats-server.")] = None,
    bus_advertise: Annotated[
        str | None, typer.Option(help="host:port of the bus as agents reach it.")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="An existing PostgreSQL URL (default: one under --dir)."),
    ] = None,
    tls: Annotated[
        bool | None, typer.Option("--tls/--no-tls", help="TLS on the manager and the bus.")
    ] = None,
) -> None:
    """Start nats-server (JetStream, authenticated users), PostgreSQL, the workers and the
    manager; print the addresses and an enrolment token; restart a part that crashes; stop
    everything on Ctrl-C or SIGTERM (or provarmor cluster down)."""
    cluster = _settings(
        state_dir=state_dir,
        workers=workers,
        partitions=partitions,
        listen=listen,
        bus_listen=bus_listen,
        bus_advertise=bus_advertise,
        database_url=db,
        tls=tls,
    )
    root = cluster.root
    state = read_state(root) if root.exists() else None
    if state is not None and alive(int(str(state.get("supervisor") or 0))):
        raise ConfigError(
            f"a cluster already runs here (supervisor pid {state['supervisor']})",
            location=str(root),
        )
    parts = state.get("parts") if state is not None else None
    left = [p for p in parts if alive(int(p.get("pid") or 0))] if isinstance(parts, list) else []
    if left:
        names = ", ".join(f"{part['name']} (pid {part['pid']})" for part in left)
        raise ConfigError(
            f"parts of an earlier run still run: {names}; `provarmor cluster down --dir "
            f"{root}` ends them",
            location=str(root),
        )
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(root / "cluster.log")],
    )
    cluster.on_event = log.warning
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        first_start = not (root / "manager" / "stdout").exists()
        cluster.start()
        _announce(cluster, first_start=first_start)
        while True:
            cluster.supervise_once()
            time.sleep(POLL_S)
    except Stop as stop:
        console.print(f"{stop}: stopping the workers, the manager, the bus and the database")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.stop()
        restarts = {part.name: part.restarts for part in cluster.parts if part.restarts}
        console.print(f"cluster stopped; restarts: {restarts or 'none'}")


def _enrolment_token(database_url: str, *, seconds: int) -> str:
    from provarmor.manager.auth import Role
    from provarmor.manager.database import open_findings_store
    from provarmor.manager.routes.tokens import create_token
    from provarmor.model.time_units import seconds_to_ns

    store = open_findings_store(database_url)
    try:
        return create_token(
            store, role=Role.ENROLL, label="cluster", valid_ns=seconds_to_ns(seconds)
        ).token
    finally:
        store.close()


def _announce(cluster: Cluster, *, first_start: bool) -> None:
    settings = OPTIONS.load().manager
    enrolment = _enrolment_token(cluster.database_url, seconds=settings.enrollment_token_seconds)
    root = cluster.root
    database = cluster.database_url.split("@")[-1]
    console.print(f"cluster in {escape(str(root))}")
    console.print(f"  bus       {cluster.bus_url} (JetStream; log {root / 'logs' / 'nats.log'})")
    console.print(f"  database  postgresql://…@{escape(database)}")
    console.print(f"  manager   {cluster.manager_url} (console /, API docs /docs)")
    workers, partitions = cluster.settings.workers, cluster.settings.partition_count
    if cluster.settings.claim_partitions:
        console.print(f"  workers   {workers}, sharing {partitions} partitions by leases")
    else:
        console.print(f"  workers   {workers} (partitions 0..{workers - 1} of {partitions})")
    if partitions > workers and not cluster.settings.claim_partitions:
        console.print(
            f"  partitions {workers}..{partitions - 1} need a worker each elsewhere: "
            f"provarmor worker --bus {cluster.bus_url} --bus-credentials "
            f"{root / 'bus' / 'worker.creds'} --partitions {partitions} --partition N --db URL"
        )
    if cluster.ca_file is not None:
        console.print(f"  CA        {cluster.ca_file} (agents: --ca)")
    admin = (root / "manager" / "stdout").read_text(encoding="utf-8").split()
    if first_start and admin:
        console.print("admin token (first start, shown once; keep it):")
        typer.echo(admin[-1])
    console.print(
        f"enrolment token (one agent, valid {settings.enrollment_token_seconds} s; more: "
        f"provarmor cluster enrollment-token --dir {root}):"
    )
    typer.echo(enrolment)
    ca = f" --ca {cluster.ca_file}" if cluster.ca_file else ""
    console.print(
        f"ready: agents run `provarmor agent --manager {cluster.manager_url}{ca} "
        "--enroll-token TOKEN`; Ctrl-C or `provarmor cluster down` stops the cluster"
    )


@cluster_app.command()
def status(state_dir: DirOption = None) -> None:
    """Which parts run, their pids and restarts, and the addresses."""
    root = _settings(state_dir=state_dir).root
    state = read_state(root)
    if state is None:
        raise ConfigError("no cluster here (cluster.json)", location=str(root))
    supervisor = int(str(state.get("supervisor") or 0))
    running = alive(supervisor)
    console.print(
        f"cluster {escape(str(root))}: {'running' if running else 'stopped'}"
        + (f" (supervisor pid {supervisor})" if running else "")
    )
    console.print(f"  manager {state.get('manager')}, bus {state.get('bus')}")
    parts = state.get("parts")
    for part in parts if isinstance(parts, list) else []:
        pid = int(part.get("pid") or 0)
        what = f"pid {pid}" if alive(pid) else "not running"
        console.print(f"  {part.get('name'):<10} {what}, restarts {part.get('restarts', 0)}")
    if not running:
        raise typer.Exit(1)


@cluster_app.command()
def down(state_dir: DirOption = None) -> None:
    """Stop the cluster of this directory (its supervisor stops the parts in order)."""
    root = _settings(state_dir=state_dir).root
    for line in stop_recorded(root):
        console.print(line)


@cluster_app.command("enrollment-token")
def enrollment_token(state_dir: DirOption = None) -> None:
    """Make a one-time agent enrolment token for this cluster's manager and print it."""
    root = _settings(state_dir=state_dir).root
    path = root / "manager" / "database-url"
    try:
        url = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"no cluster database here: {exc}", location=str(path)) from None
    seconds = OPTIONS.load().manager.enrollment_token_seconds
    typer.echo(_enrolment_token(url, seconds=seconds))


def register(app: typer.Typer, *, panel: str) -> None:
    app.add_typer(cluster_app, name="cluster", rich_help_panel=panel)
