import os
import subprocess
import time

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
