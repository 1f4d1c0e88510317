"""``provarmor lab``: record labelled datasets by running attack scenarios and benign work
under the live agent; list them; clean up after a crashed run."""

from __future__ import annotations

import gzip
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from provarmor.agent.settings import AUTO, AgentSettings, HostLogChoice, SensorChoice
from provarmor.cli.config_command import OPTIONS
from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import ns_to_seconds
from provarmor.sources.owngroup import own_group

if TYPE_CHECKING:
    from provarmor.response.policy import Policy

console = Console()
lab_app = typer.Typer(help="The attack lab: labelled datasets from real attacks and work.")
RECORDED = "events.ndjson"
START_TIMEOUT_S = 120.0
ANY_SENSOR = SensorChoice(AUTO)


class ResponseMode(StrEnum):
    """``--response``: the response policy's modes (the policy module loads only when used)."""

    ENFORCE = "enforce"
    DRY_RUN = "dry-run"
    OFF = "off"


class AgentRecorder:
    """The lab's Recorder: the live agent in this process, writing canonical NDJSON; with a
    ``response`` policy it also analyses what it records and responds by that policy (its
    audit trail is kept in the dataset as ``actions.jsonl``)."""

    def __init__(
        self,
        *,
        out_dir: Path,
        sensor: SensorChoice,
        host_logs: bool = False,
        response: Policy | None = None,
        seed: int = 0,
    ) -> None:
        from provarmor.agent.runner import Agent
        from provarmor.cli.agent_commands import response_setup
        from provarmor.evaluation.dataset import RAW_FILE
        from provarmor.lab.response import lab_response_settings

        self.out_dir = out_dir
        self._state = tempfile.TemporaryDirectory(prefix="provarmor-lab-agent-")
        state = Path(self._state.name)
        settings = AgentSettings(sensor=sensor, state_dir=state)
        if host_logs:  # the scenario's host logs (the journal) beside the kernel sensor
            settings = replace(settings, host_logs=HostLogChoice.JOURNALD)
        self.response = None
        if response is not None:  # acting only inside the lab's jails and victim namespace
            config = OPTIONS.load()
            scoped = lab_response_settings(config.response, seed=seed)
            self.response = response_setup(
                response, replace(config, response=scoped), state_dir=state
            )
        self.agent = Agent(
            settings,
            out=out_dir / RECORDED,
            raw_out=out_dir / RAW_FILE,
            response=self.response,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors: list[BaseException] = []
        self.sensor = sensor.value

    def _run(self) -> None:
        try:
            self.agent.run(self._stop)
        except BaseException as exc:
            self._errors.append(exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lab-agent", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.agent.run_state.status is None and time.monotonic() < deadline:
            if self._errors:
                raise self._errors[0]
            time.sleep(0.2)
        if self.agent.run_state.status is None:
            raise ConfigError("the agent did not start within two minutes")
        self.sensor = self.agent.run_state.status.sensor

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        self._keep_trail()
        self._state.cleanup()
        if self._errors:
            raise self._errors[0]

    def _keep_trail(self) -> None:
        """The responder's audit trail goes into the dataset (before the state folder,
        quarantine store included, is removed); an empty one when it was asked for nothing
        (a run that responded and was not contained is scored too)."""
        from provarmor.evaluation.dataset import ACTIONS_FILE

        if self.response is None:
            return
        trail = self.response.responder.audit.path
        if trail.exists():
            shutil.copyfile(trail, self.out_dir / ACTIONS_FILE)
        else:
            (self.out_dir / ACTIONS_FILE).touch()

    def __enter__(self) -> AgentRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Whatever happened (a lab that failed before or after the recording started):
        the agent is stopped and its state folder removed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        self._keep_trail()
        self._state.cleanup()


@lab_app.command("run")
def run(  # noqa: PLR0913
    name: Annotated[str, typer.Argument(help="A scenario, benign, or benign:NAME,NAME.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory to create.")],
    seed: Annotated[int, typer.Option(help="Varies names, paths, ports and timing.")] = 0,
    duration: Annotated[float, typer.Option(help="Seconds of benign work (benign mixes).")] = 60.0,
    background: Annotated[
        str, typer.Option(help="Benign workloads alongside a scenario (all, or names).")
    ] = "",
    sensor: Annotated[SensorChoice, typer.Option(help="Sensor backend.")] = ANY_SENSOR,
    response: Annotated[
        ResponseMode | None,
        typer.Option(
            help="The recording agent responds to its own incidents: enforce, dry-run or off "
            "(default: the policy file's mode; no response without a policy either)."
        ),
    ] = None,
    response_policy: Annotated[
        Path | None,
        typer.Option(
            help="Response policy (YAML); default with --response: the shipped containment "
            "policy. block and isolate act on the lab victim's own network namespace."
        ),
    ] = None,
) -> None:
    """Run NAME under the live agent and write a labelled dataset to --out (root)."""
    from provarmor.evaluation.dataset import ACTIONS_FILE, finish_dataset
    from provarmor.lab.registry import records_host_logs
    from provarmor.lab.response import lab_policy
    from provarmor.lab.runner import run_lab
    from provarmor.response.policy import Mode

    policy = None
    if response is not None or response_policy is not None:
        policy = lab_policy(response_policy, None if response is None else Mode(response.value))
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    recorder = AgentRecorder(
        out_dir=out,
        sensor=sensor,
        host_logs=records_host_logs(name),
        response=policy,
        seed=seed,
    )
    with recorder, own_group():  # the lab's own set-up is ProvArmor's; its jails the rest
        truth = run_lab(
            name,
            out_dir=out,
            recorder=recorder,
            seed=seed,
            duration=duration,
            background=background,
        )
    meta = finish_dataset(out, recorded=out / RECORDED, sensor=recorder.sensor)
    state = "completed" if truth.completed or truth.kind == "benign" else "INCOMPLETE"
    console.print(
        f"{escape(meta.name)} ({meta.kind}, seed {meta.seed}, {state}): {meta.events:,} events "
        f"from the {meta.sensor} sensor in "
        f"{ns_to_seconds(meta.ended_ns - meta.started_ns):.1f} s -> "
        f"{escape(str(out))}"
    )
    if recorder.response is not None:
        counters = recorder.response.responder.counters
        outcomes = ", ".join(f"{key} {counters[key]}" for key in sorted(counters)) or "none"
        console.print(
            f"response ({recorder.response.responder.policy.mode.value}): {outcomes} -> "
            f"{escape(str(out / ACTIONS_FILE))}"
        )


DEFAULT_ATOMICS = Path("../shared/data/atomic-red-team")


@lab_app.command("atomics")
def atomics(  # noqa: PLR0913
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for results and events.")],
    atomics_path: Annotated[
        Path, typer.Option("--atomics", help="Atomic Red Team folder (with atomics/).")
    ] = DEFAULT_ATOMICS,
    only: Annotated[
        str, typer.Option(help="Comma-separated technique ids or test ids to run.")
    ] = "",
    timeout: Annotated[float, typer.Option(help="Seconds per test phase.")] = 30.0,
    install_packages: Annotated[
        bool, typer.Option(help="Install allow-listed Debian packages a test needs.")
    ] = False,
    sensor: Annotated[SensorChoice, typer.Option(help="Sensor backend.")] = ANY_SENSOR,
) -> None:
    """Run the Linux Atomic Red Team tests that can run here, one at a time, under the agent."""
    from provarmor.evaluation.dataset import EVENTS_FILE
    from provarmor.lab.atomics.runner import run_atomics

    if not atomics_path.is_dir():
        raise ConfigError(f"no Atomic Red Team folder at {atomics_path}")
    out.mkdir(parents=True, exist_ok=True)
    with AgentRecorder(out_dir=out, sensor=sensor) as recorder:
        report = run_atomics(
            atomics_path,
            recorder=recorder,
            out_dir=out,
            only=[item for item in only.split(",") if item] or None,
            timeout_s=timeout,
            install_packages=install_packages,
        )
    recorded = out / RECORDED
    if recorded.exists():
        with recorded.open("rb") as source, gzip.open(out / EVENTS_FILE, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        recorded.unlink()
        recorded.with_name(recorded.name + ".position").unlink(missing_ok=True)
    for line in report.summary_lines():
        console.print(escape(line))


@lab_app.command("list")
def list_command() -> None:
    """The scenarios and benign workloads."""
    from provarmor.lab.registry import SCENARIOS, WORKLOADS

    table = Table(title="attack scenarios")
    for column in ("name", "techniques", "tactics", "title"):
        table.add_column(column)
    for scenario in SCENARIOS:
        table.add_row(
            scenario.name,
            str(len(scenario.techniques)),
            str(len(scenario.tactics)),
            escape(scenario.title),
        )
    console.print(table)
    workloads = Table(title="benign workloads")
    for column in ("name", "looks like", "title"):
        workloads.add_column(column)
    for workload in WORKLOADS:
        workloads.add_row(workload.name, escape(workload.looks_like), escape(workload.title))
    console.print(workloads)


@lab_app.command("cleanup")
def cleanup() -> None:
    """Undo what a crashed lab run left behind (namespaces, users, files, processes)."""
    from provarmor.lab.cleanup import cleanup as lab_cleanup

    for line in lab_cleanup():
        console.print(escape(line))


def register(app: typer.Typer, *, panel: str) -> None:
    app.add_typer(lab_app, name="lab", rich_help_panel=panel)
