import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provarmor.lab.jail import ProcessJail, leftover_jails

pytestmark = pytest.mark.privileged


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_detached_and_double_forked_children_are_killed_and_the_group_removed():
    jail = ProcessJail("pytest-jail")
    try:
        started = jail.spawn(
            ["sh", "-c", "nohup sleep 101 >/dev/null 2>&1 & setsid sleep 102 & sleep 0.3"],
            stdout=subprocess.DEVNULL,
        )
        started.wait(timeout=10)
        time.sleep(0.2)
        members = jail.pids()
        assert len(members) == 2 and all(alive(pid) for pid in members)
        assert os.getpid() not in members
    finally:
        jail.kill_all()
    time.sleep(0.2)
    assert not any(alive(pid) for pid in members)
    assert jail.pids() == []
    assert all(not path.name.endswith("pytest-jail") for path in leftover_jails())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_jailed_children_leave_provarmors_own_group_and_the_spawner_returns_to_it():
    script = """
import subprocess
import sys
import threading
from pathlib import Path
from provarmor.lab.jail import ProcessJail
from provarmor.sources.owngroup import enter_own_group, in_own_group
if enter_own_group() is None:
    raise SystemExit(3)
jail = ProcessJail("pytest-own-jail")
try:
    child = jail.spawn(["sleep", "5"])
    print(in_own_group(Path(f"/proc/{child.pid}/cgroup").read_text()))
    print(in_own_group(Path("/proc/self/cgroup").read_text()))
finally:
    jail.kill_all()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    if done.returncode == 3:
        pytest.skip("no cgroup v2 hierarchy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_a_machinery_jail_sits_below_provarmors_own_group_and_is_cleaned_up():
    script = """
from pathlib import Path
from provarmor.lab.jail import ProcessJail, leftover_jails
from provarmor.sources.owngroup import OWN_GROUP, in_own_group
jail = ProcessJail("pytest-machinery", own=True)
if not jail.uses_cgroup:
    raise SystemExit(3)
try:
    child = jail.spawn(["sleep", "5"])
    print(in_own_group(Path(f"/proc/{child.pid}/cgroup").read_text()))
    print(in_own_group(Path("/proc/self/cgroup").read_text()))
    print(any(p.parent.name == OWN_GROUP and p.name == jail.name for p in leftover_jails()))
finally:
    jail.kill_all()
print(any(p.name == jail.name for p in leftover_jails()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    if done.returncode == 3:
        pytest.skip("no cgroup v2 hierarchy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "True", "False"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_two_jails_spawning_from_two_threads_each_get_their_own_children():
    """The spawner moves its whole process into a jail's group for the fork: two jails
    doing so from two threads at once (the lab's benign lanes start cron daemons in the
    victim jail while ssh clients start in the machinery jail) must not hand one's child to
    the other, nor leave the spawner in a jail (whose clean-up would kill the lab itself)."""
    first, second = ProcessJail("pytest-jail-a"), ProcessJail("pytest-jail-b")
    if not (first.uses_cgroup and second.uses_cgroup):
        pytest.skip("no cgroup v2 hierarchy here")
    home = Path("/proc/self/cgroup").read_text()
    placed: dict[str, list[int]] = {first.name: [], second.name: []}

    def spawn_many(jail: ProcessJail) -> None:
        for _ in range(40):
            child = jail.spawn(["sleep", "30"], stdout=subprocess.DEVNULL)
            placed[jail.name].append(child.pid)

    try:
        threads = [threading.Thread(target=spawn_many, args=(jail,)) for jail in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for jail in (first, second):
            assert sorted(jail.pids()) == sorted(placed[jail.name]), jail.name
        assert Path("/proc/self/cgroup").read_text() == home
    finally:
        first.kill_all()
        second.kill_all()
