"""ProvArmor's own cgroup: membership from /proc text, and the real thing (root, cgroup v2):
a process that enters the group takes its later children with it, and the live eBPF sensor
marks exactly those children's events."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provarmor.model.actions import Action
from provarmor.sources.ebpf.program import ProgramOptions
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.owngroup import (
    OWN_GROUP,
    cgroup2_root,
    in_own_group,
    moves_into_own_group,
    own_group_id,
)


def test_membership_is_read_from_the_v2_line_only() -> None:
    assert in_own_group(f"0::/{OWN_GROUP}\n")
    assert in_own_group(f"12:pids:/x\n0::/{OWN_GROUP}/child\n")
    assert not in_own_group(f"0::/{OWN_GROUP}-lab-v1\n")
    assert not in_own_group("0::/user.slice/session-1.scope\n")
    assert not in_own_group(f"4:memory:/{OWN_GROUP}\n")


def test_a_cgroup_procs_file_moves_into_the_group_only_when_it_is_under_it() -> None:
    root = "/sys/fs/cgroup/unified"
    assert moves_into_own_group(f"{root}/{OWN_GROUP}/cgroup.procs")
    assert moves_into_own_group(f"{root}/{OWN_GROUP}/lab/cgroup.procs")
    assert not moves_into_own_group(f"{root}/{OWN_GROUP}-lab-jail/cgroup.procs")
    assert not moves_into_own_group(f"{root}/cgroup.procs")
    assert not moves_into_own_group(f"{root}/user.slice/cgroup.procs")


def test_no_cgroup2_mount_means_nothing_is_marked(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\n")
    assert cgroup2_root(mounts) is None
    assert own_group_id(tmp_path / "absent") == 0


def _needs_root_and_cgroup2() -> Path:
    root = cgroup2_root()
    if os.geteuid() != 0 or root is None:
        pytest.skip("needs root and a cgroup v2 hierarchy")
    return root


@pytest.mark.privileged
def test_a_process_that_enters_the_group_takes_its_children_with_it() -> None:
    root = _needs_root_and_cgroup2()
    script = (
        "import subprocess; from provarmor.sources.owngroup import enter_own_group;"
        "print(enter_own_group());"
        "print(subprocess.run(['cat', '/proc/self/cgroup'], capture_output=True, text=True).stdout)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    group, child = done.stdout.split("\n", 1)
    assert group == str(root / OWN_GROUP)
    assert in_own_group(child)
    assert own_group_id(root) == (root / OWN_GROUP).stat().st_ino
    assert not in_own_group(Path("/proc/self/cgroup").read_text())  # pytest stayed put


@pytest.mark.privileged
def test_a_command_run_in_process_gives_its_caller_back_its_group() -> None:
    _needs_root_and_cgroup2()
    script = (
        "from pathlib import Path; from provarmor.sources.owngroup import own_group, in_own_group;"
        "here = lambda: in_own_group(Path('/proc/self/cgroup').read_text());"
        "before = here()\n"
        "with own_group():\n    inside = here()\n"
        "print(before, inside, here())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "True", "False"]


@pytest.mark.privileged
@pytest.mark.slow
def test_the_live_sensor_marks_the_processes_of_the_group_and_no_others() -> None:
    """The group itself and a group directly below it (the lab's machinery jail) are own."""
    root = _needs_root_and_cgroup2()
    if shutil.which("bpftrace") is None:
        pytest.skip("bpftrace is not installed (scripts/bootstrap.sh dev installs it)")
    (root / OWN_GROUP).mkdir(exist_ok=True)
    below = root / OWN_GROUP / f"pytest-below-{os.getpid()}"
    below.mkdir()
    own = f"echo $$ > {root / OWN_GROUP}/cgroup.procs; cat /etc/hostname > /dev/null; true"
    jailed = f"echo $$ > {below}/cgroup.procs; cat /etc/hostname > /dev/null; true"
    other = "cat /etc/hostname > /dev/null; true"
    source = EbpfSource(EbpfSettings(program=ProgramOptions(flush_ms=200)))
    try:
        with source:
            for script in (own, jailed, other):
                subprocess.run(["bash", "-c", script], check=True)
            time.sleep(0.5)
    finally:
        _remove_when_empty(below)
    events = list(source.events())
    shells = {
        e.process.entity_id: e.process.args[-1]
        for e in events
        if e.event.action is Action.EXEC and e.process.args[:2] == ("bash", "-c")
    }
    assert set(shells.values()) == {own, jailed, other}
    cats = [
        e
        for e in events
        if e.event.action is Action.EXEC
        and e.process.args == ("cat", "/etc/hostname")
        and e.process.parent is not None
        and e.process.parent.entity_id in shells
    ]
    marked = {
        shells[c.process.parent.entity_id]: c.process.provarmor for c in cats if c.process.parent
    }
    assert marked == {own: True, jailed: True, other: False}
    assert source.counters.parse_errors == 0, source.counters.errors


def _remove_when_empty(group: Path, timeout: float = 10.0) -> None:
    """Remove ``group`` once its last process has gone (the kernel frees it shortly after)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            group.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
