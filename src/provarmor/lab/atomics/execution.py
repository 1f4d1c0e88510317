"""Running one selected atomic test: dependencies, command, cleanup, then undo and check.

:func:`run_test` follows Invoke-AtomicTest's order. It prepares the test's workspace (scratch
``/tmp``, ``/var/tmp`` and home, a private copy of the technique folder), snapshots the
watched system files (:mod:`provarmor.lab.snapshot`, persisted for crash recovery), then for
each dependency runs the check, and when it fails the fix (if the plan allows it) and the
check again; a dependency still missing makes the test ``skipped``. Otherwise the command
runs, and its exit status makes the test ``ran`` (0) or ``failed``. The cleanup command runs
in every case. Each phase runs in the sandbox, in its own ``provarmor-lab-*`` cgroup, with
the test's timeout; at the end every process the test left is killed, the snapshot is
restored and compared again, and the workspace is deleted. Of the user database only the
users and groups the test's own commands create are undone (:func:`accounts_journal`): the
machine is shared, and another process's account changes must survive the test.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from provarmor.lab import proc, snapshot
from provarmor.lab.account_journal import AccountJournal
from provarmor.lab.atomics.areas import HOME, PRIVATE, within
from provarmor.lab.atomics.identities import created_identities
from provarmor.lab.atomics.sandbox import Sandbox
from provarmor.lab.atomics.selection import AtomicPlan, DependencyPlan
from provarmor.lab.jail import ProcessJail

OUTPUT_TAIL = 4000
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_HOME_FILES = (".bashrc", ".profile", ".bash_history")
"""Root's files copied into the test's home, so edits to them behave as on a real host (a
missing history is created empty, as a host someone works on has one)."""


class Phase(StrEnum):
    PREREQ = "prereq"
    GET_PREREQ = "get_prereq"
    COMMAND = "command"
    CLEANUP = "cleanup"


class Status(StrEnum):
    RAN = "ran"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseRun:
    phase: Phase
    dependency: int = -1
    """Which dependency (0-based) a prereq/get_prereq phase served."""
    pid: int
    start_ns: int
    """The process's start time as /proc has it (the key labels use with the pid)."""
    started_ns: int
    ended_ns: int
    exit_code: int | None
    """None when it timed out."""
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomicRun:
    status: Status
    reason: str = ""
    started_ns: int
    ended_ns: int
    phases: tuple[PhaseRun, ...] = ()
    restored: tuple[str, ...] = ()
    """System files the snapshot restore wrote back or removed, users it deleted."""
    differences: tuple[str, ...] = ()
    """What still differs from the snapshot after the restore (empty: as before)."""
    killed: int = 0
    """Processes still running when the test ended (killed)."""

    @property
    def command(self) -> PhaseRun | None:
        return next((run for run in self.phases if run.phase is Phase.COMMAND), None)


def environment(plan: AtomicPlan) -> dict[str, str]:
    """The environment every phase runs with (root's login environment, in the sandbox)."""
    return {
        "HOME": HOME,
        "USER": "root",
        "LOGNAME": "root",
        "SHELL": "/bin/bash",
        "PATH": _PATH,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "PathToAtomicsFolder": plan.workspace.atomics,
    }


def prepare_workspace(plan: AtomicPlan, *, atomics: Path) -> None:
    """Create the scratch directories and copy the technique folder into the workspace.

    The workspace must not lie under a place the sandbox replaces (``/tmp``, ``/var/tmp``,
    ``/root``): inside the sandbox it would be hidden by the very binds it provides."""
    workspace = plan.workspace
    if any(within(workspace.scratch, place) for place in PRIVATE):
        raise ValueError(f"workspace {workspace.scratch} would be hidden inside the sandbox")
    for path, mode in (
        (workspace.temporary, 0o1777),
        (workspace.variable_temporary, 0o1777),
        (workspace.home, 0o700),
    ):
        Path(path).mkdir(parents=True, exist_ok=True)
        Path(path).chmod(mode)
    technique = plan.test.technique_id
    source = atomics / technique
    copy = Path(workspace.atomics) / technique
    if source.is_dir():
        shutil.copytree(source, copy, dirs_exist_ok=True)
    (copy / "bin").mkdir(parents=True, exist_ok=True)  # Makefiles build into ../bin
    for name in _HOME_FILES:
        original, target = Path(HOME) / name, Path(workspace.home) / name
        if original.is_file():
            shutil.copy2(original, target)
        elif name == ".bash_history":
            target.touch(mode=0o600)


def remove_workspace(plan: AtomicPlan) -> None:
    """Delete the workspace, clearing immutable flags a test may have set."""
    scratch = Path(plan.workspace.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    if scratch.exists():
        subprocess.run(["chattr", "-R", "-i", "-a", str(scratch)], capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(path.stat().st_size - OUTPUT_TAIL, 0))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


@dataclass(slots=True, kw_only=True)
class _Runner:
    plan: AtomicPlan
    sandbox: Sandbox
    timeout_s: float
    logs: Path
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    jails: list[ProcessJail] = field(default_factory=list)
    phases: list[PhaseRun] = field(default_factory=list)

    def run(self, phase: Phase, text: str, *, shell: str, dependency: int = -1) -> PhaseRun:
        jail = ProcessJail(f"a{self.token}{len(self.jails)}")
        self.jails.append(jail)
        argv = self.sandbox.argv(workspace=self.plan.workspace, shell=shell, command=text)
        log = self.logs / f"{len(self.phases):02d}-{phase}.log"
        with log.open("wb") as output:
            started = time.time_ns()
            process = jail.spawn(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment(self.plan),
                cwd="/",
            )
            start_ns = proc.process_start_ns(process.pid)
            try:
                code: int | None = process.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                code = None
                jail.kill_all()
        run = PhaseRun(
            phase=phase,
            dependency=dependency,
            pid=process.pid,
            start_ns=start_ns,
            started_ns=started,
            ended_ns=time.time_ns(),
            exit_code=code,
            output=_tail(log),
        )
        self.phases.append(run)
        return run

    def dependency(self, index: int, dependency: DependencyPlan) -> str:
        """'' when the dependency is there (perhaps after its fix), else why it is missing."""
        shell = self.plan.dependency_shell
        if (
            not dependency.check.strip()
            or self.run(Phase.PREREQ, dependency.check, shell=shell, dependency=index).ok
        ):
            return ""
        if dependency.fix_blocked and not dependency.packages:
            return dependency.fix_blocked
        if dependency.packages:
            return f"needs {', '.join(dependency.packages)} (installed only with install_packages)"
        if dependency.fix.strip():
            self.run(Phase.GET_PREREQ, dependency.fix, shell=shell, dependency=index)
            if self.run(Phase.PREREQ, dependency.check, shell=shell, dependency=index).ok:
                return ""
            return "still missing after get_prereq_command"
        return "no get_prereq_command"

    def leftovers(self) -> int:
        count = 0
        for jail in self.jails:
            with contextlib.suppress(OSError):
                count += len(jail.pids())
            jail.kill_all()
        return count


def _status(plan: AtomicPlan, runner: _Runner) -> tuple[Status, str]:
    for index, dependency in enumerate(plan.dependencies):
        missing = runner.dependency(index, dependency)
        if missing:
            label = dependency.description.splitlines()[0][:80] if dependency.description else ""
            return Status.SKIPPED, f"dependency missing: {label}: {missing}"
    command = runner.run(Phase.COMMAND, plan.command, shell=plan.shell)
    if command.exit_code is None:
        return Status.FAILED, f"timed out after {runner.timeout_s:g} s"
    if command.exit_code != 0:
        last = command.output.strip().splitlines()[-1:] or [""]
        return Status.FAILED, f"exit {command.exit_code}: {last[0][:160]}"
    return Status.RAN, ""


def accounts_journal(plan: AtomicPlan) -> AccountJournal:
    """The journal of the users and groups ``plan``'s own commands create (the safety
    screen lets a test change only those): after the test exactly they are removed. The
    machine is shared (the agent, other work): an account another process adds, changes or
    removes meanwhile is left as it is."""
    texts = [plan.command, plan.cleanup]
    texts += [text for d in plan.dependencies for text in (d.check, d.fix)]
    created = created_identities(texts)
    users = sorted(created.users)
    return AccountJournal().naming(users=users, groups=sorted({*users, *created.groups}))


def run_test(
    plan: AtomicPlan, *, sandbox: Sandbox, atomics: Path, timeout_s: float, logs: Path
) -> AtomicRun:
    """Run ``plan`` once, leaving the machine as it was; ``logs`` receives each phase's
    output."""
    logs.mkdir(parents=True, exist_ok=True)
    started = time.time_ns()
    prepare_workspace(plan, atomics=atomics)
    taken = snapshot.take(f"{logs.name}-{secrets.token_hex(3)}", accounts_journal(plan))
    saved = snapshot.save(taken)
    runner = _Runner(plan=plan, sandbox=sandbox, timeout_s=timeout_s, logs=logs)
    try:
        status, reason = _status(plan, runner)
        if plan.cleanup.strip():
            runner.run(Phase.CLEANUP, plan.cleanup, shell=plan.shell)
    finally:
        killed = runner.leftovers()
        report = snapshot.restore(taken)
        differences = snapshot.differences(taken)
        saved.unlink(missing_ok=True)
        remove_workspace(plan)
    return AtomicRun(
        status=status,
        reason=reason,
        started_ns=started,
        ended_ns=time.time_ns(),
        phases=tuple(runner.phases),
        restored=(
            *report.rewritten,
            *report.removed,
            *report.accounts.entries_restored,
            *(f"user {name}" for name in report.accounts.users_deleted),
            *(f"group {name}" for name in report.accounts.groups_deleted),
        ),
        differences=tuple(differences),
        killed=killed,
    )


def is_root() -> bool:
    return os.geteuid() == 0
