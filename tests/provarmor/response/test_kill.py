"""``kill`` on real processes: the whole tree dies; a target whose pid now belongs to
another process (pid reuse) is never signalled; the allow-list holds."""

import dataclasses
import os
import shutil
import signal
from pathlib import Path

import pytest

from provarmor.model.ids import process_entity_id
from provarmor.response.kill import KILL
from provarmor.response.processes import pin
from provarmor.response.records import ActionKind, ActionRequest, Outcome, ProcessTarget
from provarmor.sources.procfs import ProcClock, read_process

from .conftest import TREE, children_of, gone, target_of, wait_for

pytestmark = pytest.mark.privileged


def request(target: ProcessTarget, *, explicit: bool = False) -> ActionRequest:
    return ActionRequest(
        id="a1", kind=ActionKind.KILL, target=target, requested_by="test", explicit=explicit
    )


def test_kill_ends_the_whole_tree(context, spawn):
    shell = spawn(*TREE, children=2)
    members = [shell.pid, *children_of(shell.pid)]
    result = KILL.run(request(target_of(shell.pid, context)), context)
    assert result.outcome is Outcome.DONE, result.message
    assert sorted(result.affected) == sorted(str(pid) for pid in members)
    shell.wait(timeout=5)
    wait_for(lambda: all(gone(pid) for pid in members), what="the tree to die")


def test_a_reused_pid_is_never_hit(context, spawn):
    """The target names pid P with the start time of an earlier process: P now belongs to
    another one (as after a reuse), which must survive."""
    victim = spawn("sleep", "300")
    info = read_process(victim.pid, clock=context.clock)
    assert info is not None
    earlier = process_entity_id(
        host_id=context.host.id,
        boot_id=context.host.boot_id,
        pid=victim.pid,
        start=info.start - 10 * context.clock.ns_per_tick,
    )
    result = KILL.run(request(ProcessTarget(entity_id=earlier, pid=victim.pid)), context)
    assert result.outcome is Outcome.REFUSED
    assert "pid reused" in result.message
    assert victim.poll() is None, "the process now holding the pid was signalled"


def test_the_pin_refuses_a_process_that_started_after_it_was_seen(context, spawn):
    """Between reading /proc and opening the pidfd the pid may change hands: the pin
    compares start times after opening, so a changed start means nothing is signalled."""
    victim = spawn("sleep", "300")
    info = read_process(victim.pid, clock=context.clock)
    assert info is not None
    stale = dataclasses.replace(info, start_ticks=info.start_ticks - 1)
    assert pin(stale, context) is None
    pinned = pin(info, context)
    assert pinned is not None
    os.close(pinned.fd)


@pytest.mark.parametrize(
    ("pid", "why"),
    [(1, "pid 1"), (os.getpid(), "the ProvArmor agent itself")],
    ids=["pid-1", "own-process"],  # the same in every pytest-xdist worker (not the pid)
)
def test_the_allow_list_refuses(context, pid, why):
    result = KILL.run(request(target_of(pid, context)), context)
    assert result.outcome is Outcome.REFUSED
    assert why in result.message


def test_the_package_manager_only_when_named(context, spawn, tmp_path: Path):
    dpkg = tmp_path / "dpkg"
    shutil.copy("/bin/sleep", dpkg)
    process = spawn(str(dpkg), "300")
    target = target_of(process.pid, context)
    refused = KILL.run(request(target), context)
    assert refused.outcome is Outcome.REFUSED and "package manager" in refused.message
    assert process.poll() is None
    done = KILL.run(request(target, explicit=True), context)
    assert done.outcome is Outcome.DONE
    assert process.wait(timeout=5) == -signal.SIGKILL


def test_sshd_listener_is_refused_but_not_its_session_children(context, spawn, tmp_path):
    sshd = tmp_path / "sshd"
    shutil.copy("/bin/sh", sshd)
    listener = spawn(str(sshd), "-c", f"{sshd} -c 'sleep 300; true' & wait", children=1)
    session = children_of(listener.pid)[0]
    wait_for(lambda: Path(f"/proc/{session}/exe").resolve() == sshd.resolve(), what="exec")
    refused = KILL.run(request(target_of(listener.pid, context)), context)
    assert refused.outcome is Outcome.REFUSED and "sshd's listener" in refused.message
    done = KILL.run(request(target_of(session, context)), context)
    assert done.outcome is Outcome.DONE, done.message
    assert listener.wait(timeout=5) == 0, "the listener was signalled (it ends normally)"


def test_a_clock_from_another_boot_time_changes_the_identity(context, spawn):
    victim = spawn("sleep", "300")
    shifted = ProcClock(btime=context.clock.btime - 1, clk_tck=context.clock.clk_tck)
    info = read_process(victim.pid, clock=shifted)
    assert info is not None
    target = ProcessTarget(entity_id=info.entity_id(context.host), pid=victim.pid)
    assert KILL.run(request(target), context).outcome is Outcome.REFUSED
    assert victim.poll() is None
