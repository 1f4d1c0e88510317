from provarmor.model.ids import process_entity_id
from provarmor.sources.base import HostContext
from provarmor.sources.sysdig.processes import ProcessTable

HOST = HostContext(id="h", boot_id="b")


def test_first_sight_starts_a_process_and_exec_keeps_it():
    table = ProcessTable(HOST)
    state = table.seen(10, at=100)
    assert state.entity_id == process_entity_id(host_id="h", boot_id="b", pid=10, start=100)
    assert table.seen(10, at=200) is state


def test_fork_of_a_recycled_pid_is_a_new_process():
    table = ProcessTable(HOST)
    old = table.seen(10, at=100)
    new = table.forked(10, at=500)
    assert new.entity_id != old.entity_id
    assert new.from_fork
    assert table.get(10) is new


def test_exit_removes_and_marks_the_pid_until_it_is_reused():
    table = ProcessTable(HOST)
    table.seen(10, at=100)
    table.exited(10)
    assert table.get(10) is None
    assert table.has_exited(10)
    table.forked(10, at=900)
    assert not table.has_exited(10)


def test_command_lines_find_the_process_that_executed_them():
    table = ProcessTable(HOST)
    state = table.seen(42, at=1)
    state.command_line = "curl -s http://127.0.0.1:8765/"
    table.executed(state)
    assert table.by_command_line("curl -s http://127.0.0.1:8765/") == 42
    assert table.by_command_line("") is None


def test_table_is_bounded_and_counts_evictions():
    table = ProcessTable(HOST, capacity=2)
    for pid in (1, 2, 3):
        table.seen(pid, at=pid)
    assert table.evictions == 1
    assert table.get(1) is None
