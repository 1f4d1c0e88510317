"""Shared fixtures for the lab tests: a skip for machines that cannot run the lab, and a
recorder fake, and a plan-syntax helper."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from provarmor.lab.context import PYTHON

LAB_TOOLS = ("ip", "sshd", "ssh", "nc", "curl", "gcc", "sudo", "unzip", "dig", "rsync", "ping")


def lab_missing() -> str:
    """Why this machine cannot run the lab ('' when it can)."""
    if os.geteuid() != 0:
        return "the lab needs root"
    tools = [
        tool
        for tool in LAB_TOOLS
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}")
    ]
    if tools:
        return f"missing lab tools: {', '.join(tools)} (see docs/lab.md)"
    if not os.path.exists(PYTHON):
        return f"missing {PYTHON}"
    return ""


@pytest.fixture
def lab_machine() -> None:
    reason = lab_missing()
    if reason:
        pytest.skip(reason)


class FakeRecorder:
    """Remembers when it was started and stopped."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")


@pytest.fixture
def recorder() -> FakeRecorder:
    return FakeRecorder()


def shell_syntax_error(command: str) -> str:
    """sh's complaint about ``command`` ('' when it parses); nothing is executed."""
    done = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
    return done.stderr if done.returncode else ""


def _check_plans(scenario):
    """Build ``scenario``'s plan for two seeds and check what must hold for any plan;
    returns the two (context, plan) pairs for scenario-specific checks."""
    from provarmor.lab.context import LabContext
    from provarmor.lab.runner import check_plan
    from provarmor.lab.scenario import Channel

    built = []
    for seed in (1, 2):
        ctx = LabContext.from_seed(seed)
        plan = scenario.plan(ctx)
        check_plan(scenario, plan, ctx)
        for action in plan.actions:
            assert not shell_syntax_error(action.command), (action.step, action.command)
            if action.channel in (Channel.LAUNCH, Channel.VICTIM):
                assert action.user, "launches run as a lab user"
        for path in plan.artifacts:
            assert path.startswith("/") and path.count("/") >= 2, path
        built.append((ctx, plan))
    first, second = (" ".join(a.command for a in plan.actions) for _, plan in built)
    assert first != second, "commands must differ between seeds"
    assert len(scenario.techniques) >= 5 and len(scenario.tactics) >= 4
    return built


@pytest.fixture
def plan_checks():
    return _check_plans


class FakeEnvironment:
    """Stands in for LabEnvironment: records the commands a workload would run, and how."""

    def __init__(self, seed: int = 5) -> None:
        from provarmor.lab.context import LabContext
        from provarmor.lab.infrastructure import mirror_files

        self.ctx = LabContext.from_seed(seed)
        self.mirror_paths = tuple(sorted(mirror_files(self.ctx)))
        self.commands: list[tuple[str, str, bytes]] = []
        self.accounts: list[str] = []
        self.via: list[str] = []
        self.installed: dict[str, tuple[str, int]] = {}
        """How each command ran: ``run`` (straight from the lab), ``login`` (typed at the
        terminal of an ssh login), ``cron`` (a cron job)."""

    def will_create_account(self, name):
        self.accounts.append(name)

    def run(self, command, *, user="", timeout=30.0, stdin=b"", check=False):
        from provarmor.lab.environment import Completed

        self.commands.append((command, user, stdin))
        self.via.append("run")
        return Completed(pid=1, started_ns=0, ended_ns=0, returncode=0, output=b"")

    def login(self, user, typed, *, timeout=60.0, check=False):
        done = self.run("", user=user, stdin=typed.encode())
        self.via[-1] = "login"
        return done

    def type_command(self, user, command, *, timeout=60.0, check=False):
        done = self.run(command, user=user)
        self.via[-1] = "login"
        return done

    def install(self, path, text, *, mode=0o644):
        self.installed[path] = (text, mode)

    def scheduled(self, name, script, *, user="root", timeout=60.0):
        self.run(script, user="" if user == "root" else user)
        self.via[-1] = "cron"


@pytest.fixture
def workload_commands():
    """Run a workload against a fake environment (seeded); returns (env, commands)."""
    import random

    def run(workload, seed=5):
        env = FakeEnvironment(seed)
        workload.run(env, random.Random(seed))
        for command, _user, _stdin in env.commands:
            assert not shell_syntax_error(command), command
        assert workload.name and workload.title and workload.description
        return env, env.commands

    return run
