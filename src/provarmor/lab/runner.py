"""Runs one scenario, or a mix of benign workloads, while a recorder records; writes the
ground truth.

The order is fixed: build the seeded context and plan, check every command against the
containment guard, start the lab environment, set up the preconditions, then
``recorder.start()``, run the steps (with seeded pauses), ``recorder.stop()``, and finally
tear the environment down, whatever happened. ``labels.json`` goes into the output
directory next to whatever the recorder wrote, with ``transcript.log`` (each step's
command and answer) for whoever debugs a run.

The recorder is a seam: :class:`Recorder` has ``start()`` and ``stop()``; the live agent
implements it. :class:`NullRecorder` records nothing (dry runs, tests).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import msgspec

from provarmor.evaluation.dataset import TRANSCRIPT_FILE
from provarmor.evaluation.groundtruth import (
    LABELS_FILE,
    BenignSession,
    EndpointRef,
    GroundTruth,
    InfraProcess,
    RootProcess,
    Spawner,
    StepRecord,
    TechniqueRef,
    write_ground_truth,
)
from provarmor.lab import proc
from provarmor.lab.context import LabContext
from provarmor.lab.environment import LabEnvironment
from provarmor.lab.execution import Operator, Outcome
from provarmor.lab.preparation import prepare
from provarmor.lab.registry import BENIGN_MIX, find_scenario, find_workloads
from provarmor.lab.scenario import Action, Channel, Plan, Scenario
from provarmor.lab.techniques import Technique
from provarmor.lab.workload import Workload
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import ns_to_seconds


class Recorder(Protocol):
    """Records the machine while the lab runs: ``start()`` before the first step,
    ``stop()`` after the last (also when a step failed)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class NullRecorder:
    """Records nothing."""

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    seed: int = 0
    pause: tuple[float, float] = (0.2, 1.2)
    """Seeded pause before each step, seconds."""
    settle: float = 1.0
    """Seconds recorded after the last step, for late events."""
    background: tuple[Workload, ...] = ()
    """Benign workloads to run alongside a scenario (empty: the scenario alone)."""
    lanes: int = 2
    """Benign sessions running at the same time."""


def check_plan(scenario: Scenario, plan: Plan, ctx: LabContext) -> None:
    """The plan has one action per step, in order, and names only contained addresses."""
    planned = [action.step for action in plan.actions]
    expected = [step.name for step in scenario.steps]
    if planned != expected:
        raise ConfigError(f"{scenario.name}: actions {planned} do not match steps {expected}")
    guard = ctx.network.containment()
    guard.assert_contained(action.command for action in plan.actions)
    guard.assert_contained(payload.content for payload in plan.payloads)


def _technique_refs(techniques: Sequence[Technique]) -> tuple[TechniqueRef, ...]:
    return tuple(TechniqueRef(id=t.id, name=t.name, tactic=str(t.tactic)) for t in techniques)


@dataclass(slots=True)
class _Journal:
    steps: list[StepRecord] = field(default_factory=list)
    roots: list[RootProcess] = field(default_factory=list)
    spawners: list[Spawner] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    sessions: list[BenignSession] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, scenario: Scenario, action: Action, outcome: Outcome) -> None:
        spec = scenario.step(action.step)
        self.steps.append(
            StepRecord(
                name=action.step,
                channel=str(action.channel),
                started_ns=outcome.started_ns,
                ended_ns=outcome.ended_ns,
                ok=outcome.ok,
                techniques=_technique_refs(spec.techniques),
                summary=spec.summary,
            )
        )
        self.roots.extend(outcome.roots)
        if outcome.client_port:
            self.client_ports.append(outcome.client_port)
        self.lines.append(
            f"== {action.step} [{action.channel}] ok={outcome.ok}\n$ {action.command}\n"
            f"{outcome.output[-4000:]}\n"
        )


class _BenignLanes:
    """Benign sessions on ``lanes`` threads until stopped or the deadline passes."""

    def __init__(self, env: LabEnvironment, workloads: Sequence[Workload], *, seed: int) -> None:
        self.env = env
        self.workloads = tuple(workloads)
        self.seed = seed
        self.journal = _Journal()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, *, lanes: int, deadline: float) -> None:
        for lane in range(lanes if self.workloads else 0):
            thread = threading.Thread(target=self._lane, args=(lane, deadline), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _lane(self, lane: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1009 + lane)  # noqa: S311  (variation, not secrecy)
        time.sleep(rng.uniform(0.0, 1.0))
        while not self._stop.is_set() and time.monotonic() < deadline:
            workload = rng.choice(self.workloads)
            started = time.time_ns()
            error = ""
            try:
                workload.run(self.env, rng)
            except Exception as failure:  # a failed benign session is recorded, never fatal
                error = str(failure)[-500:] or type(failure).__name__
            session = BenignSession(
                workload=workload.name,
                started_ns=started,
                ended_ns=time.time_ns(),
                ok=not error,
                error=error,
            )
            with self.journal.lock:
                self.journal.sessions.append(session)
            self._stop.wait(rng.uniform(0.1, 1.0))

    def stop(self, *, timeout: float = 60.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)


def _infrastructure(env: LabEnvironment) -> tuple[InfraProcess, ...]:
    return tuple(
        InfraProcess(pid=server.pid, start_ns=proc.process_start_ns(server.pid), role=role)
        for role, server in sorted(env.servers.items())
    )


def _sshd_pid(env: LabEnvironment, role: str) -> int:
    """The listening sshd's pid (the server process is ``ip netns exec`` -> sh -> sshd,
    which execs in place, so it is the spawned pid)."""
    return env.servers[role].pid


def _endpoints(ctx: LabContext, journal: _Journal) -> tuple[EndpointRef, ...]:
    found = [
        EndpointRef(ip=ctx.c2.address, port=ctx.c2.http_port, role="c2"),
        EndpointRef(ip=ctx.c2.address, port=ctx.c2.shell_port, role="c2-shell"),
        EndpointRef(ip=ctx.address("sink"), port=ctx.sink_http_port, role="sink-http"),
        EndpointRef(ip=ctx.address("sink"), port=ctx.sink_tcp_port, role="sink-tcp"),
        EndpointRef(ip=ctx.address("dns"), port=ctx.dns_port, role="dns", transport="udp"),
        EndpointRef(ip=ctx.address("host2"), port=22, role="host2-ssh"),
    ]
    found += [
        EndpointRef(ip=ctx.c2.address, port=port, role="attacker-client")
        for port in journal.client_ports
    ]
    return tuple(found)


def _base_truth(ctx: LabContext, env: LabEnvironment, *, kind: str, name: str) -> GroundTruth:
    """The fields every run's ground truth has (times are filled in afterwards)."""
    hosts = (*ctx.network.hosts.values(), ctx.network.victim)
    return GroundTruth(
        kind=kind,
        name=name,
        seed=ctx.seed,
        run_id=ctx.run_id,
        host_name=proc.host_name(),
        boot_id=proc.boot_id(),
        started_ns=0,
        ended_ns=0,
        infrastructure=_infrastructure(env),
        web_pid=env.web_pid,
        users={"web": ctx.web.user, "ops": ctx.ops_user, "dev": ctx.dev_user},
        namespaces={host.namespace: host.role for host in hosts},
        addresses={host.role: host.address for host in hosts},
    )


def _perform_steps(
    scenario: Scenario, plan: Plan, env: LabEnvironment, settings: RunSettings
) -> _Journal:
    journal = _Journal()
    operator = Operator(env)
    for action in plan.actions:
        time.sleep(env.ctx.names.jitter(*settings.pause))
        outcome = operator.perform(action)
        journal.note(scenario, action, outcome)
        if not outcome.ok and action.channel is not Channel.VICTIM:
            journal.lines.append(f"== aborted after {action.step}: later steps not run\n")
            break
        if action.lateral_to:
            journal.spawners.append(
                Spawner(
                    pid=_sshd_pid(env, action.lateral_to),
                    start_ns=proc.process_start_ns(_sshd_pid(env, action.lateral_to)),
                    from_ns=outcome.started_ns,
                    to_ns=outcome.ended_ns,
                    role=action.lateral_to,
                    step=action.step,
                )
            )
    return journal


def run_scenario(
    scenario: Scenario, *, recorder: Recorder, out_dir: Path, settings: RunSettings
) -> GroundTruth:
    """Run ``scenario`` once under ``recorder``; writes and returns the ground truth."""
    ctx = LabContext.from_seed(settings.seed)
    plan = scenario.plan(ctx)
    check_plan(scenario, plan, ctx)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = tuple(path for workload in settings.background for path in workload.artifacts(ctx))
    begun = time.time_ns()
    artifacts = (*plan.artifacts, *extra)
    with LabEnvironment(ctx, artifacts=artifacts, host_logs=scenario.host_logs) as env:
        for name in plan.accounts:
            env.will_create_account(name)
        prepare(ctx, plan)
        lanes = _BenignLanes(env, settings.background, seed=settings.seed)
        recorder.start()
        started = time.time_ns()
        try:
            lanes.start(lanes=settings.lanes, deadline=time.monotonic() + 300)
            journal = _perform_steps(scenario, plan, env, settings)
            time.sleep(settings.settle)
        finally:
            lanes.stop()
            ended = time.time_ns()
            recorder.stop()
        base = _base_truth(ctx, env, kind="scenario", name=scenario.name)
    timing = (
        f"== set-up {ns_to_seconds(started - begun):.1f} s, "
        f"recorded {ns_to_seconds(ended - started):.1f} s, "
        f"tear-down {ns_to_seconds(time.time_ns() - ended):.1f} s\n"
    )
    (out_dir / TRANSCRIPT_FILE).write_text("".join(journal.lines) + timing)
    steps = tuple(journal.steps)
    truth = msgspec.structs.replace(
        base,
        title=scenario.title,
        root_cause=scenario.root_cause,
        started_ns=started,
        ended_ns=ended,
        attack_start_ns=steps[0].started_ns if steps else started,
        attack_end_ns=steps[-1].ended_ns if steps else ended,
        attacker_roots=tuple(journal.roots),
        spawners=tuple(journal.spawners),
        exec_roots=plan.exec_roots,
        steps=steps,
        completed=len(steps) == len(plan.actions) and all(step.ok for step in steps),
        techniques=_technique_refs(scenario.techniques),
        files=plan.artifacts,
        endpoints=_endpoints(ctx, journal),
        sessions=tuple(lanes.journal.sessions),
    )
    write_ground_truth(truth, out_dir / LABELS_FILE)
    return truth


def run_benign(
    workloads: Sequence[Workload],
    *,
    recorder: Recorder,
    out_dir: Path,
    settings: RunSettings,
    duration: float = 60.0,
) -> GroundTruth:
    """Run a mix of ``workloads`` for ``duration`` seconds under ``recorder``."""
    if not workloads:
        raise ConfigError("a benign mix needs at least one workload")
    ctx = LabContext.from_seed(settings.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = tuple(path for workload in workloads for path in workload.artifacts(ctx))
    with LabEnvironment(ctx, artifacts=extra) as env:
        lanes = _BenignLanes(env, workloads, seed=settings.seed)
        recorder.start()
        started = time.time_ns()
        try:
            lanes.start(lanes=settings.lanes, deadline=time.monotonic() + duration)
            time.sleep(duration)
        finally:
            lanes.stop()
            time.sleep(settings.settle)
            ended = time.time_ns()
            recorder.stop()
        base = _base_truth(ctx, env, kind="benign", name="benign-mix")
    truth = msgspec.structs.replace(
        base, started_ns=started, ended_ns=ended, sessions=tuple(lanes.journal.sessions)
    )
    write_ground_truth(truth, out_dir / LABELS_FILE)
    return truth


def run_lab(  # noqa: PLR0913  (the CLI's options, passed through)
    name: str,
    *,
    out_dir: Path,
    recorder: Recorder,
    seed: int = 0,
    duration: float = 60.0,
    background: str = "",
) -> GroundTruth:
    """What ``provarmor lab run NAME --out DIR`` does.

    ``name`` is a scenario name, ``benign`` (every workload) or ``benign:NAME,NAME``.
    ``background`` names workloads (``all`` for every one) to run alongside a scenario.
    """
    if name == BENIGN_MIX or name.startswith(f"{BENIGN_MIX}:"):
        workloads = find_workloads(name.partition(":")[2])
        settings = RunSettings(seed=seed)
        return run_benign(
            workloads, recorder=recorder, out_dir=out_dir, settings=settings, duration=duration
        )
    scenario = find_scenario(name)
    extra = find_workloads("" if background == "all" else background) if background else ()
    settings = RunSettings(seed=seed, background=extra)
    return run_scenario(scenario, recorder=recorder, out_dir=out_dir, settings=settings)
