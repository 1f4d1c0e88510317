from __future__ import annotations

from provarmor.model.event import ProcessRef
from provarmor.model.ids import process_entity_id
from provarmor.sources.auditd.process_table import MAX_FDS, ProcessTable


def _id(pid, start=0):
    return process_entity_id(host_id="h", boot_id="b", pid=pid, start=start)


def test_unknown_pid_predates_the_log():
    table = ProcessTable(host_id="h", boot_id="b")

    state = table.lookup(200, ppid=1)

    assert state.entity_id == _id(200)
    assert state.start == 0
    assert state.parent == ProcessRef(entity_id=_id(1), pid=1)
    assert table.lookup(200, ppid=1) is state


def test_fork_gives_the_child_a_new_identity_and_inherits_the_rest():
    table = ProcessTable(host_id="h", boot_id="b")
    parent = table.lookup(100, ppid=1)
    parent.executable, parent.args = "/usr/bin/bash", ("bash", "-c", "x")
    parent.set_fd(3, "/etc/passwd")

    child = table.fork(parent, 101, start=5_000)

    assert child.entity_id == _id(101, 5_000)
    assert child.start == 5_000
    assert (child.executable, child.args) == ("/usr/bin/bash", ("bash", "-c", "x"))
    assert child.parent.entity_id == parent.entity_id
    assert child.parent.command_line == "bash -c x"
    assert child.fds == {3: "/etc/passwd"}
    child.set_fd(4, "/tmp/y")
    assert 4 not in parent.fds


def test_a_new_fork_replaces_a_reused_pid():
    table = ProcessTable(host_id="h", boot_id="b")
    parent = table.lookup(100, ppid=1)
    stale = table.lookup(101, ppid=1)

    child = table.fork(parent, 101, start=7)

    assert table.get(101) is child
    assert child.entity_id != stale.entity_id


def test_exit_removes_the_process():
    table = ProcessTable(host_id="h", boot_id="b")
    table.lookup(100, ppid=1)

    table.exit(100)

    assert 100 not in table
    assert table.ref(100) == ProcessRef(entity_id=_id(100), pid=100)


def test_seeded_entries_keep_their_identity():
    table = ProcessTable(host_id="h", boot_id="b")
    parent = ProcessRef(entity_id="init", pid=1)

    seeded = table.seed(
        300,
        entity_id="from-proc",
        start=42,
        executable="/usr/sbin/sshd",
        args=("sshd",),
        parent=parent,
    )

    assert table.lookup(300, ppid=1) is seeded
    assert (seeded.entity_id, seeded.start, seeded.name) == ("from-proc", 42, "sshd")
    assert table.ref(300).entity_id == "from-proc"
    assert table.seed(301, start=9).entity_id == _id(301, 9)


def test_table_is_bounded_and_evicts_the_least_recently_used():
    table = ProcessTable(host_id="h", boot_id="b", capacity=3)
    for pid in (1, 2, 3):
        table.lookup(pid, ppid=0)
    table.get(1)  # 1 is now the most recently used

    table.lookup(4, ppid=0)

    assert 2 not in table
    assert 1 in table
    assert len(table) == 3
    assert table.evictions == 1


def test_descriptor_table_is_bounded():
    table = ProcessTable(host_id="h")
    state = table.lookup(10, ppid=0)

    for fd in range(MAX_FDS + 5):
        state.set_fd(fd, f"/f{fd}")

    assert len(state.fds) == MAX_FDS
    assert 0 not in state.fds
    assert state.fds[MAX_FDS + 4] == f"/f{MAX_FDS + 4}"
