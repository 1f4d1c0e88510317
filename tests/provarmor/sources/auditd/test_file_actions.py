from __future__ import annotations

from provarmor.model.actions import Action


def _by(events, action, path):
    return [e for e in events if e.event.action == action and e.file and e.file.path == path]


def test_open_for_writing_an_existing_file_is_a_write(file_ops):
    events, _ = file_ops

    (write,) = _by(events, Action.WRITE, "/tmp/pa-files/d.txt")  # truncate: O_WRONLY|O_CREAT

    assert write.auditd["a2"] == "841"
    assert write.file.inode == 2146596
    assert write.file.uid == "65534"


def test_failed_open_is_a_failure_with_the_name_asked_for(file_ops):
    events, _ = file_ops

    (probe,) = _by(events, Action.OPEN, "/tmp/pa-files/a.txt")

    assert probe.event.outcome == "failure"
    assert probe.auditd["exit"] == "-2"
    assert probe.file.inode is None


def test_read_open_of_a_shared_file(pipeline):
    events, _ = pipeline

    reads = _by(events, Action.OPEN, "/etc/passwd")

    assert {e.process.name for e in reads} == {"bash", "cat"}
    assert all(e.file.type == "file" and e.file.mode == 0o644 for e in reads)


def test_creation_through_a_relative_name_in_the_working_directory(file_ops):
    events, _ = file_ops

    (created,) = _by(events, Action.CREATE, "/tmp/pa-files/a.txt")

    assert created.auditd["syscall"] == "openat"
    assert created.process.name == "cp"


def test_symlink_target_and_hard_link_source(file_ops):
    events, _ = file_ops

    (symlink,) = _by(events, Action.LINK, "/tmp/pa-files/c.txt")
    (hardlink,) = _by(events, Action.LINK, "/tmp/pa-files/d.txt")

    assert symlink.auditd["syscall"] == "symlinkat"
    assert symlink.file.original_path == "/tmp/pa-files/b.txt"
    assert symlink.file.type == "symlink"
    assert hardlink.auditd["syscall"] == "linkat"
    assert hardlink.file.original_path == "/tmp/pa-files/b.txt"


def test_directory_removal(file_ops):
    events, _ = file_ops

    (sub,) = _by(events, Action.DELETE, "/tmp/pa-files/sub")
    (top,) = _by(events, Action.DELETE, "/tmp/pa-files")

    assert sub.file.type == top.file.type == "dir"
    assert sub.auditd["syscall"] == top.auditd["syscall"] == "rmdir"
