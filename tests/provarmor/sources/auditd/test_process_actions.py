from __future__ import annotations

from provarmor.model.actions import Action
from provarmor.sources.auditd.process_actions import execve_args
from provarmor.sources.auditd.records import parse_audit_line


def test_execve_args_from_split_records(auditd_data):
    lines = (auditd_data / "long_args.log").read_text().split("\n")
    records = [parse_audit_line(lines[n - 1]) for n in (110, 111, 112)]

    args = execve_args(records)

    assert args == ("/usr/bin/true", "a" * 9000, "short")


def test_execve_args_stop_at_the_first_missing_argument(auditd_data):
    lines = (auditd_data / "long_args.log").read_text().split("\n")

    # line 110 alone: argc=3, a0, and the first 3730-byte chunk of a1
    assert execve_args([parse_audit_line(lines[109])]) == ("/usr/bin/true", "a" * 3730)


def test_exit_removes_the_process_so_a_reused_pid_is_new(pipeline):
    events, _ = pipeline
    exits = [e for e in events if e.event.action == Action.EXIT]

    assert len(exits) == 4
    assert all(e.event.outcome == "success" for e in exits)
    assert "exit" not in exits[0].auditd  # exit_group records have no result


def test_thread_clone_is_not_a_fork(attack_chain):
    events, report = attack_chain

    assert {e.process.pid for e in events if e.event.action == Action.FORK} == {
        12478,
        12479,
        12480,
        12482,
        12484,
    }
    assert report.skipped["clone3_unresolved"] == 2  # curl's resolver, the server's thread


def test_executable_mappings_resolve_through_the_descriptor_table(privileged):
    events, report = privileged

    mapped = {e.file.path for e in events if e.event.action == Action.MMAP_EXEC}

    assert "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so" in mapped
    assert "/lib/x86_64-linux-gnu/libffi.so.8" in mapped
    assert report.skipped["fd_unresolved"] == 0
