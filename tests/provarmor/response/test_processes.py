"""Pinning and tree gathering on real processes: a tree that forks while it is gathered is
still caught whole (members are stopped as they are found)."""

import os
import signal

import pytest

from provarmor.response.processes import find_target, pinned_tree, send, wait_exited

from .conftest import children_of, gone, state_of, target_of, wait_for

pytestmark = pytest.mark.privileged


def test_a_forking_tree_is_gathered_whole(context, spawn):
    # each level forks the next, so the tree is still growing while it is gathered
    script = 'f() { if [ $1 -gt 0 ]; then sh -c "sleep 300" & f $(($1 - 1)); fi; }; f 6; wait'
    shell = spawn("sh", "-c", script, children=6)
    root = find_target(target_of(shell.pid, context), context)
    assert root is not None
    with pinned_tree(root, context, explicit=False, stop=True) as tree:
        pids = {member.info.pid for member in tree.members}
        assert {shell.pid, *children_of(shell.pid)} <= pids
        for member in tree.members:
            send(member, signal.SIGKILL)
        assert wait_exited(tree.members, timeout=5) == []
    wait_for(lambda: all(gone(pid) for pid in pids), what="the tree to die")


def test_wait_exited_reports_survivors(context, spawn):
    process = spawn("sleep", "300")
    root = find_target(target_of(process.pid, context), context)
    assert root is not None
    with pinned_tree(root, context, explicit=False, stop=False) as tree:
        assert [m.info.pid for m in wait_exited(tree.members, timeout=0.1)] == [process.pid]
        fds = [member.fd for member in tree.members]
    for fd in fds:  # closed when the block ends
        with pytest.raises(OSError):
            os.fstat(fd)


def test_an_exited_process_not_yet_reaped_is_gone_not_a_target(context, spawn):
    """A zombie (its parent has not waited for it) has nothing left to stop: it is no
    target, and a tree counts no zombie among its members."""
    shell = spawn("sh", "-c", "sleep 300 & exec sleep 301", children=1)  # sleep never reaps
    [orphan] = children_of(shell.pid)
    target = target_of(shell.pid, context)
    sleeper = target_of(orphan, context)
    os.kill(orphan, signal.SIGKILL)
    wait_for(lambda: state_of(orphan) == "Z", what="an unreaped child")
    assert find_target(sleeper, context) is None
    root = find_target(target, context)
    assert root is not None
    with pinned_tree(root, context, explicit=False, stop=False) as tree:
        assert [member.info.pid for member in tree.members] == [shell.pid]
