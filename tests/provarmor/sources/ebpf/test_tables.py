"""The decoder's process table: identity by pid AND start, path resolution, bounded memory."""

from __future__ import annotations

from provarmor.model.event import Endpoint
from provarmor.model.ids import process_entity_id
from provarmor.sources.ebpf import tables
from provarmor.sources.ebpf.tables import Peer, ProcessTable
from provarmor.sources.procfs import HostIdentity, ProcessInfo

HOST = HostIdentity(id="h", boot_id="b")


def test_a_recycled_pid_gets_a_new_identity() -> None:
    table = ProcessTable(HOST)
    first = table.get(10, start=1_000)
    first.executable = "/bin/old"
    again = table.get(10, start=1_000)
    assert again is first
    recycled = table.get(10, start=2_000)
    assert recycled is not first and recycled.executable == ""
    assert recycled.entity_id == process_entity_id(host_id="h", boot_id="b", pid=10, start=2_000)


def test_resolve_against_cwd_and_directory_descriptors() -> None:
    state = ProcessTable(HOST).get(5, start=1)
    state.cwd = "/home/u"
    state.remember_fd(3, "/etc")
    assert state.resolve("/a//b/../c") == "/a/c"
    assert state.resolve("/plain") == "/plain"
    assert state.resolve("x/./y") == "/home/u/x/y"
    assert state.resolve("passwd", 3) == "/etc/passwd"
    assert state.resolve("", 3) == "/etc"
    assert state.resolve("f", 9) == "/proc/5/fd/9/f"
    state.cwd = ""
    assert state.resolve("rel") == "rel"


def test_fd_memory_is_bounded_and_forgets_the_oldest() -> None:
    state = ProcessTable(HOST).get(5, start=1)
    for fd in range(tables.MAX_FDS_PER_PROCESS + 10):
        state.remember_fd(fd, f"/f{fd}")
    assert len(state.fds) == tables.MAX_FDS_PER_PROCESS
    last = tables.MAX_FDS_PER_PROCESS + 9
    assert 0 not in state.fds and state.fds[last] == f"/f{last}"


def test_exited_processes_are_kept_until_their_deadline() -> None:
    table = ProcessTable(HOST)
    state = table.get(7, start=3)
    state.peers[4] = Peer("tcp", None, Endpoint(ip="10.0.0.1", port=80))
    table.retire(state, until=100)
    assert 7 not in table.by_pid
    assert table.get(7, start=3) is state
    table.purge(now=101)
    assert table.get(7, start=3) is not state


def test_seed_does_not_override_what_records_said_and_fork_inherits() -> None:
    table = ProcessTable(HOST)
    known = table.get(20, start=50)
    known.executable = "/usr/bin/from-exec"
    info = ProcessInfo(pid=20, ppid=1, start=50, start_ticks=5, comm="x", executable="/old")
    table.seed(info)
    assert table.get(20, start=50).executable == "/usr/bin/from-exec"
    table.seed(ProcessInfo(pid=21, ppid=1, start=60, start_ticks=6, comm="y", cwd="/srv", euid=0))
    parent = table.get(21, start=60)
    parent.remember_fd(3, "/srv/log")
    child = table.fork(parent, 22, 70, "y")
    assert (child.cwd, child.euid, child.fds) == ("/srv", 0, {3: "/srv/log"})
    child.remember_fd(4, "/tmp/x")
    assert 4 not in parent.fds
    user = child.process().user
    assert user is not None and user.id == "0"


def test_a_fork_fills_a_state_that_other_records_created_empty() -> None:
    table = ProcessTable(HOST)
    parent = table.get(7, start=1)
    parent.executable, parent.args, parent.cwd = "/usr/bin/sh", ("sh", "-c", "x"), "/srv"
    parent.remember_fd(3, "/srv/log")
    early = table.get(8, start=2)  # a record of the child came before its (held) fork
    early.remember_fd(4, "/tmp/out")
    table.fork(parent, 8, 2, "sh", at=99)
    assert table.find(8) is early
    assert (early.executable, early.args, early.cwd) == ("/usr/bin/sh", ("sh", "-c", "x"), "/srv")
    assert early.fds == {3: "/srv/log", 4: "/tmp/out"}
    assert early.creator is not None and early.creator.entity_id == parent.entity_id
    assert (early.ppid, early.forked_ns) == (7, 99)
    early.executable = "/usr/bin/cat"  # an exec seen first is newer: kept
    table.fork(parent, 8, 2, "sh", at=100)
    assert table.find(8) is early and early.executable == "/usr/bin/cat"


def test_own_mark_comes_from_proc_or_a_record_and_is_not_inherited() -> None:
    table = ProcessTable(HOST)
    table.seed(ProcessInfo(pid=30, ppid=1, start=5, start_ticks=1, comm="up", own=True))
    runner = table.get(30, start=5)
    assert runner.process().provarmor
    child = table.fork(runner, 31, 6, "sh")  # the jail moved the runner out for this fork
    assert not child.process().provarmor


def test_a_fork_whose_own_mark_came_first_keeps_it() -> None:
    table = ProcessTable(HOST)
    parent = table.get(40, start=1)
    marked = table.get(41, start=2)  # its L record, printed just before its F
    marked.own = True
    child = table.fork(parent, 41, 2, "sh", at=5)
    assert child.process().provarmor and table.find(41) is marked


def test_a_late_fork_fills_the_process_and_the_children_it_had_meanwhile() -> None:
    table = ProcessTable(HOST)
    parent = table.get(10, start=1)
    parent.executable, parent.args, parent.cwd = "/usr/bin/make", ("make", "-j2"), "/src"
    worker = table.get(20, start=2)  # records came before its fork: nothing known
    worker.cwd = "/src/lib"
    child = table.fork(worker, 30, 3, "cc")  # forked by the worker meanwhile
    grandchild = table.fork(table.get(30, start=3), 40, 4, "as")
    assert (child.executable, grandchild.executable) == ("", "")
    table.fork(parent, 20, 2, "make")  # the worker's fork arrives at last
    assert (worker.executable, worker.args, worker.cwd) == (
        "/usr/bin/make",
        ("make", "-j2"),
        "/src/lib",
    )
    assert worker.creator is not None and worker.creator.entity_id == parent.entity_id
    assert table.get(30, start=3).executable == "/usr/bin/make"
    assert table.get(40, start=4).executable == "/usr/bin/make"
    assert table.late_forks == 3


def test_a_fork_arriving_after_the_exit_fills_the_exited_process() -> None:
    table = ProcessTable(HOST)
    parent = table.get(10, start=1)
    parent.executable = "/usr/bin/make"
    worker = table.get(20, start=2)
    child = table.fork(worker, 30, 3, "cc")
    table.retire(child, until=100)
    table.retire(worker, until=100)
    table.fork(parent, 20, 2, "make")
    assert (worker.executable, child.executable) == ("/usr/bin/make", "/usr/bin/make")
    assert table.find(20) is None  # it exited: not alive again
    assert table.late_forks == 2
