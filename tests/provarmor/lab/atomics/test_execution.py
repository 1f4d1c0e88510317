import contextlib
import os
import secrets
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from provarmor.lab import snapshot
from provarmor.lab.account_journal import AccountJournal
from provarmor.lab.atomics.arguments import Workspace
from provarmor.lab.atomics.execution import (
    Phase,
    Status,
    accounts_journal,
    environment,
    prepare_workspace,
    run_test,
)
from provarmor.lab.atomics.model import load_catalogue
from provarmor.lab.atomics.runner import SCRATCH_ROOT
from provarmor.lab.atomics.sandbox import Sandbox
from provarmor.lab.atomics.selection import AtomicPlan, DependencyPlan

pytestmark = pytest.mark.privileged
CRON = Path("/etc/cron.d/provarmor-atomics-pytest")


@pytest.fixture
def scratch():
    """A workspace root outside /tmp, /var/tmp and /root (the sandbox hides those)."""
    root = SCRATCH_ROOT / f"pytest-{secrets.token_hex(3)}"
    yield root
    shutil.rmtree(root, ignore_errors=True)
    with contextlib.suppress(OSError):  # leave no empty atomics/ behind
        SCRATCH_ROOT.rmdir()


@pytest.fixture
def plan_for(atomics_data, scratch):
    test = load_catalogue(atomics_data).tests[0]

    def build(command, *, cleanup="", dependencies=()):
        space = Workspace(scratch=str(scratch / "ws"), atomics=str(scratch / "ws" / "atomics"))
        return AtomicPlan(
            test=test,
            workspace=space,
            shell="/bin/sh",
            dependency_shell="/bin/sh",
            command=command,
            cleanup=cleanup,
            dependencies=tuple(dependencies),
        )

    return build


@pytest.fixture
def sandbox(sandbox_machine, tmp_path):
    with Sandbox(www=tmp_path / "www", log=tmp_path / "server.log") as box:
        yield box


def test_dependency_fix_command_and_cleanup_run_in_order(plan_for, sandbox, atomics_data, tmp_path):
    dependency = DependencyPlan(
        description="marker", check="test -f /tmp/dep", fix="touch /tmp/dep"
    )
    plan = plan_for("cat /tmp/dep && echo done", cleanup="rm /tmp/dep", dependencies=[dependency])
    run = run_test(
        plan, sandbox=sandbox, atomics=atomics_data / "atomics", timeout_s=10, logs=tmp_path / "l"
    )
    assert run.status is Status.RAN and run.reason == ""
    assert [(p.phase, p.exit_code) for p in run.phases] == [
        (Phase.PREREQ, 1),
        (Phase.GET_PREREQ, 0),
        (Phase.PREREQ, 0),
        (Phase.COMMAND, 0),
        (Phase.CLEANUP, 0),
    ]
    command = run.command
    assert command.output.strip() == "done" and command.pid > 0 and command.start_ns > 0
    assert run.started_ns <= command.started_ns < command.ended_ns <= run.ended_ns
    assert not Path(plan.workspace.scratch).exists()


def test_a_missing_dependency_skips_the_command_but_not_the_cleanup(
    plan_for, sandbox, atomics_data, tmp_path
):
    blocked = DependencyPlan(description="tool", check="false", fix_blocked="needs internet: x")
    plan = plan_for("echo never", cleanup="echo cleaned", dependencies=[blocked])
    run = run_test(
        plan, sandbox=sandbox, atomics=atomics_data / "atomics", timeout_s=10, logs=tmp_path / "l"
    )
    assert run.status is Status.SKIPPED
    assert run.reason == "dependency missing: tool: needs internet: x"
    assert [p.phase for p in run.phases] == [Phase.PREREQ, Phase.CLEANUP]


def test_leftovers_are_killed_and_system_files_restored(plan_for, sandbox, atomics_data, tmp_path):
    before = snapshot.take("pytest-atomics")
    plan = plan_for(f"echo '* * * * * root true' > {CRON}; sleep 60 & echo $! > /tmp/pid")
    run = run_test(
        plan, sandbox=sandbox, atomics=atomics_data / "atomics", timeout_s=10, logs=tmp_path / "l"
    )
    assert run.status is Status.RAN and run.killed >= 1
    assert str(CRON) in run.restored and run.differences == ()
    assert not CRON.exists() and snapshot.differences(before) == []


def test_a_command_past_its_timeout_is_killed_and_failed(plan_for, sandbox, atomics_data, tmp_path):
    plan = plan_for("sleep 30")
    run = run_test(
        plan, sandbox=sandbox, atomics=atomics_data / "atomics", timeout_s=0.5, logs=tmp_path / "l"
    )
    assert run.status is Status.FAILED and run.reason == "timed out after 0.5 s"
    assert run.command.exit_code is None
    assert (run.ended_ns - run.started_ns) / 1e9 < 10
    assert not os.path.exists(f"/proc/{run.command.pid}")


def test_the_workspace_has_the_technique_copy_a_bin_folder_and_a_history(
    plan_for, sandbox, atomics_data, tmp_path
):
    plan = plan_for(
        'test -f "$PathToAtomicsFolder/T1036.008/T1036.008.yaml" && '
        'test -d "$PathToAtomicsFolder/T1036.008/bin" && test -f ~/.bash_history && pwd'
    )
    test = replace(plan.test, technique_id="T1036.008")
    run = run_test(
        replace(plan, test=test),
        sandbox=sandbox,
        atomics=atomics_data / "atomics",
        timeout_s=10,
        logs=tmp_path / "l",
    )
    assert run.status is Status.RAN, run.command.output
    assert run.command.output.strip() == "/root"


def test_a_workspace_the_sandbox_would_hide_is_refused(atomics_data, tmp_path, plan_for):
    plan = plan_for("true")
    hidden = Workspace(scratch=str(tmp_path / "ws"), atomics=str(tmp_path / "ws" / "a"))
    with pytest.raises(ValueError, match="hidden"):
        prepare_workspace(replace(plan, workspace=hidden), atomics=atomics_data / "atomics")


def test_the_environment_is_roots_with_the_atomics_folder(plan_for):
    env = environment(plan_for("true"))
    assert env["HOME"] == "/root" and env["SHELL"] == "/bin/bash"
    assert env["PathToAtomicsFolder"].endswith("/ws/atomics")


def test_the_journal_names_only_the_accounts_a_tests_own_commands_create(plan_for):
    assert accounts_journal(plan_for("echo x >> /etc/profile")) == AccountJournal()
    journal = accounts_journal(plan_for("useradd art && groupadd artgrp", cleanup="userdel art"))
    assert journal.users == ("art",) and journal.groups == ("art", "artgrp")
    assert {(entry.path, entry.name) for entry in journal.before} >= {
        ("/etc/passwd", "art"),
        ("/etc/group", "artgrp"),
    }
