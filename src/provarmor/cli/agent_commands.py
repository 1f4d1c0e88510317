"""``provarmor agent`` (run the live agent) and ``provarmor agent status``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import threading
import time
import urllib.parse
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from provarmor.agent.settings import AgentSettings, SensorChoice
from provarmor.cli.config_command import OPTIONS, Config
from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError
from provarmor.sources.owngroup import own_group

if TYPE_CHECKING:
    from collections.abc import Callable

    from provarmor.agent.response_sink import ResponseSetup
    from provarmor.agent.sinks import Sink
    from provarmor.agent.status import AgentStatus
    from provarmor.response.policy import Policy
    from provarmor.response.settings import ResponseSettings

console = Console()
agent_app = typer.Typer(help="The live endpoint agent (root).")


def agent_settings(sensor: SensorChoice | None, state_dir: Path | None) -> AgentSettings:
    settings = OPTIONS.load().agent
    changes: dict[str, object] = {}
    if sensor is not None:
        changes["sensor"] = sensor
    if state_dir is not None:
        changes["state_dir"] = state_dir
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


@agent_app.callback(invoke_without_command=True)
def agent(  # noqa: PLR0913
    context: typer.Context,
    sensor: Annotated[
        SensorChoice | None, typer.Option(help="Sensor backend (default from config: auto).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write canonical NDJSON here instead of the store."),
    ] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Spool, status and store.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    manager: Annotated[
        str | None, typer.Option(help="Upload to this manager (https://host:port).")
    ] = None,
    enroll_token: Annotated[
        str | None, typer.Option(help="One-time enrolment token (first contact only).")
    ] = None,
    ca: Annotated[
        Path | None, typer.Option(help="CA certificate that signed the manager's certificate.")
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            help="Cluster mode: publish batches to this NATS JetStream bus (nats://host:port) "
            "instead of uploading them (default: the bus the manager names at enrolment, "
            "with the agent's own credentials); enrolment still goes through --manager."
        ),
    ] = None,
    response_policy: Annotated[
        Path | None,
        typer.Option(
            help="Analyse on this host (bundled Sigma rules, incidents) and respond to "
            "incidents by this policy (YAML; mode off, dry-run or enforce). Standalone only."
        ),
    ] = None,
) -> None:
    """Collect live kernel events into the local store (or --out, or a manager), until
    SIGINT/SIGTERM. With --manager the agent enrols once (--enroll-token), keeps its
    credential in the state directory and uploads its spool; an outage only delays
    delivery. With --response-policy the standalone agent raises incidents itself and
    responds to them; every action is in the audit trail (response.state_dir)."""
    if context.invoked_subcommand is not None:
        return
    from provarmor.agent.runner import Agent

    if bus is not None and manager is None:
        raise ConfigError("--bus needs --manager (the agent enrols there)", location="--bus")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = agent_settings(sensor, state_dir)
    config = OPTIONS.load()
    stop = threading.Event()

    signal.signal(signal.SIGINT, stopper(stop))
    signal.signal(signal.SIGTERM, stopper(stop))
    response = None
    if response_policy is not None:
        if out is not None or manager is not None:
            raise ConfigError(
                "--response-policy runs on the standalone agent (no --out, --manager)"
            )
        from provarmor.response.policy import read_policy

        response = response_setup(read_policy(response_policy), config, state_dir=state_dir)
        mode = response.responder.policy.mode.value
        console.print(f"response policy {escape(str(response_policy))}: mode {mode}")
    sinks = []
    if manager is not None:
        responding = response_settings(config, state_dir=state_dir)
        sinks = [uplink_sink(manager, settings, responding, token=enroll_token, ca=ca, bus=bus)]
    agent_run = Agent(settings, analysis=config, out=out, sinks=sinks, response=response)
    console.print(f"starting agent (sensor {settings.sensor.value}), state in {settings.state_dir}")
    with own_group():  # the agent's own children are marked at the source
        status = agent_run.run(stop, duration=duration, on_ready=announce_ready)
    console.print(f"sensor: {status.sensor}")
    print_counters(status.counters, status.rates)


def response_setup(policy: Policy, config: Config, *, state_dir: Path | None) -> ResponseSetup:
    """The analysis and responder of ``--response-policy`` (and of the lab's ``--response``):
    the bundled rules with the configured analysis, and the response settings (response
    state under ``--state-dir`` when one is given)."""
    from provarmor.agent.response_sink import ResponseSetup
    from provarmor.detection.sigma.loader import bundled_rules
    from provarmor.pipeline.assembly import plan_from_config
    from provarmor.response.action import build_context
    from provarmor.response.responder import Responder

    settings = response_settings(config, state_dir=state_dir)
    plan = plan_from_config(config, rules=(bundled_rules(),))
    return ResponseSetup(plan=plan, responder=Responder.open(policy, build_context(settings)))


def response_settings(config: Config, *, state_dir: Path | None) -> ResponseSettings:
    """The configured response settings, their state under ``--state-dir`` when one is
    given."""
    if state_dir is None:
        return config.response
    return dataclasses.replace(config.response, state_dir=state_dir / "response")


def stopper(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    """A SIGINT/SIGTERM handler that says at once that the agent is stopping, then stops it."""

    def handle(signum: int, frame: FrameType | None) -> None:
        del frame
        if not stop.is_set():
            name = signal.Signals(signum).name
            console.print(f"{name}: stopping the sensor and delivering what it still holds")
        stop.set()

    return handle


def announce_ready(status: AgentStatus) -> None:
    """The line that says the sensor is up: from here on, activity on this host is seen."""
    console.print(
        f"ready: the {status.sensor} sensor is up (agent pid {status.pid}); "
        "Ctrl-C or SIGTERM stops it",
        soft_wrap=True,
    )


def uplink_sink(  # noqa: PLR0913  (the manager, its bus, the agent and response settings)
    url: str,
    settings: AgentSettings,
    response: ResponseSettings,
    *,
    token: str | None,
    ca: Path | None,
    bus: str | None = None,
) -> Sink:
    """The manager sink: enrol on first contact, then reuse the saved credential; response
    commands from the manager run through a responder of its own (no automatic policy;
    audit trail and quarantine under ``response.state_dir``; the allow-list applies, with
    the manager's addresses in it, so neither block nor isolate cuts the agent off). With
    ``bus``, or when the enrolment answer named a bus (cluster mode; its address and the
    agent's own credentials are saved with the credential), batches go to the JetStream bus
    as the enrolled agent instead and commands come from the bus, signed by the manager;
    the bus's addresses join the allow-list too."""
    from provarmor.agent.spool import SpoolPosition
    from provarmor.bus.credentials import BusAccess
    from provarmor.manager.client import ManagerClient, RetryPolicy
    from provarmor.manager.command_runner import CommandRunner
    from provarmor.manager.uplink import UploadSink
    from provarmor.response.action import build_context
    from provarmor.response.policy import Policy
    from provarmor.response.responder import Responder
    from provarmor.sources.procfs import read_host_identity
    from provarmor.storage.private import private_dir

    private_dir(settings.state_dir)
    saved = settings.state_dir / "manager-credential.json"
    client = ManagerClient(url, ca_file=ca)
    if saved.exists():
        stored = json.loads(saved.read_text())
        if stored.get("url") != url:
            raise ConfigError(
                f"the agent is enrolled with {stored.get('url')}, not {url}", location=str(saved)
            )
        client.credential = str(stored["credential"])
        if stored.get("bus") is not None:
            client.bus = BusAccess.from_dict(stored["bus"], location=str(saved))
    elif token is None:
        raise ConfigError("first contact with a manager needs --enroll-token")
    else:
        identity = read_host_identity()
        credential = client.enroll(token, host_id=identity.id, hostname=socket.gethostname())
        record: dict[str, object] = {"url": url, "credential": credential}
        if client.bus is not None:
            record["bus"] = client.bus.to_dict()
        descriptor = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle)
        console.print(f"enrolled with {url} as agent {client.agent_id}")
    learned = client.bus
    bus_url = bus or (learned.url if learned else None)
    response = dataclasses.replace(
        response,
        manager_addresses=response.manager_addresses + addresses_of(url),
        bus_addresses=response.bus_addresses + (addresses_of(bus_url) if bus_url else ()),
    )
    responder = Responder.open(Policy(), build_context(response))
    responder.keep_baseline()  # what a manager's revert_file takes the files back to
    if bus_url is not None:
        from provarmor.bus.command_channel import CommandInbox
        from provarmor.bus.publisher import BusPublisher, BusSink
        from provarmor.manager.bus_listener import BusCommandListener, BusUplinkSink

        agent_id = client.agent_id
        credentials = learned.credentials if learned else None
        # one try per call: the listener tries again itself, and stops without waiting
        commands = ManagerClient(url, client.credential, ca_file=ca, retry=RetryPolicy(retries=0))
        listener = BusCommandListener(
            CommandInbox(bus_url, agent_id, credentials=credentials, ca_file=ca),
            CommandRunner(client=commands, responder=responder),
            key_file=settings.state_dir / "manager-command-key.txt",
        )
        sink = BusSink(
            BusPublisher(bus_url, credentials=credentials, ca_file=ca),
            agent_id=agent_id,
            host_id=read_host_identity().id,
            state_file=settings.state_dir / "bus.json",
            make_position=lambda sequence: SpoolPosition(sequence=sequence),
        )
        listener.start()
        return BusUplinkSink(sink, status_client=client, listener=listener)
    return UploadSink(
        client,
        state_file=settings.state_dir / "uplink.json",
        make_position=lambda sequence: SpoolPosition(sequence=sequence),
        commands=CommandRunner(client=client, responder=responder),
    )


def addresses_of(url: str) -> tuple[str, ...]:
    """The IP addresses of the manager (or bus) at ``url`` (none, logged, when its name does
    not resolve now: the configured ``response.manager_addresses`` still hold)."""
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError) as exc:
        logging.getLogger(__name__).warning("manager %s not resolved: %s", url, exc)
        return ()
    return tuple(sorted({str(info[4][0]) for info in found}))


def print_counters(counters: dict[str, int], rates: dict[str, float]) -> None:
    table = Table(title="agent counters")
    table.add_column("counter")
    table.add_column("total", justify="right")
    table.add_column("per second", justify="right")
    for key in sorted(counters):
        table.add_row(escape(key), f"{counters[key]:,}", f"{rates.get(key, 0.0):,.1f}")
    console.print(table)


@agent_app.command()
def status(
    state_dir: Annotated[Path | None, typer.Option(help="The agent's state directory.")] = None,
) -> None:
    """Show the running agent's sensor, counters with rates, and drops."""
    from provarmor.agent.status import read_status

    settings = agent_settings(None, state_dir)
    current = read_status(settings.state_dir)
    age = time.time() - current.updated_at
    state = "running" if current.running else "stopped"
    if current.running and age > 5 * settings.status_interval_seconds:
        state = f"NOT RESPONDING (last update {age:.0f} s ago)"
    console.print(f"agent pid {current.pid}, sensor [bold]{current.sensor}[/bold], {state}")
    if current.blind:
        console.print(f"[red bold]SENSOR BLIND[/red bold]: {escape(current.blind_reason)}")
    console.print(describe_learning(current.learning))
    print_counters(current.counters, current.rates)


def format_duration(seconds: float) -> str:
    """``1 h 05 min``, ``4 min 10 s``, ``12 s``."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def describe_learning(learning: dict[str, object] | None) -> str:
    """One line on the anomaly model's learning state (agent status, provarmor up)."""
    if learning is None:
        return "anomaly model: not learned here (the manager learns it, or learning is off)"
    left = format_duration(_number(learning.get("time_left_seconds")))
    window = format_duration(_number(learning.get("window_seconds")))
    seen = f"{learning.get('events', 0)} events, {learning.get('processes', 0)} processes"
    extra = ""
    if learning.get("waiting"):
        extra += f"; window extended: {learning['waiting']}"
    if learning.get("dropped"):
        extra += f"; dropped {learning['dropped']}"
    if learning.get("phase") == "learning":
        if not learning.get("window_start_ns"):
            return f"anomaly model: LEARNING, its {window} window starts at the first event"
        return (
            f"anomaly model: LEARNING this host's baseline, {left} left of {window} "
            f"(event time); {seen} so far{extra}"
        )
    relearn = "relearning off"
    if learning.get("window_end_ns"):
        relearn = f"next version in {left} ({seen} gathered)"
    return (
        f"anomaly model: ENABLED, version {learning.get('model_version')} trained at "
        f"{learning.get('trained_wall')}, threshold {_number(learning.get('threshold')):.3f} "
        f"({learning.get('threshold_source')}); {relearn}{extra}"
    )


def register(app: typer.Typer, *, panel: str) -> None:
    app.add_typer(agent_app, name="agent", rich_help_panel=panel)
