"""Records: folded field values, and the audit records behind an auditd event."""

from __future__ import annotations

import msgspec

from provarmor.detection.sigma.records import (
    EventRecordBuilder,
    Record,
    audit_record,
    auditd_records,
)
from provarmor.model.actions import Action
from provarmor.testing.factories import make_event


def test_record_folds_values_and_text_once():
    record = Record({"image": "/USR/Bin/X"}, ("Sh -C ID",))
    assert record.folded == {"image": "/usr/bin/x"}
    assert record.folded_text == ("sh -c id",)
    assert "image" in repr(record)


def test_builder_reads_only_the_fields_asked_for():
    event = make_event(Action.EXEC, exe="/bin/sh", args=("sh", "-c", "id"), ppid=1)
    record = EventRecordBuilder(["image", "parentimage"], keywords=False).build(event)
    assert record.values == {"image": "/bin/sh"}  # no parent image known: absent
    assert record.text == ()
    record = EventRecordBuilder([], keywords=True).build(event)
    assert record.values == {}
    assert record.text == ("sh -c id", "/bin/sh")


def test_events_with_the_same_field_values_share_a_key_and_its_record():
    builder = EventRecordBuilder(["image", "targetfilename", "parentimage"], keywords=True)
    first = make_event(Action.WRITE, pid=2, exe="/bin/sh", path="/etc/passwd", ts=1)
    again = make_event(Action.WRITE, pid=3, exe="/bin/sh", path="/etc/passwd", ts=9)
    other = make_event(Action.WRITE, pid=2, exe="/bin/sh", path="/etc/group", ts=1)
    assert builder.key(first) == builder.key(again) != builder.key(other)
    assert builder.key(first) == (("/bin/sh", None, "/etc/passwd"), ("/etc/passwd",))
    record = builder.record(builder.key(first))
    assert record.values == {"image": "/bin/sh", "targetfilename": "/etc/passwd"}
    assert record.folded_text == ("/etc/passwd",)


def test_exec_gives_syscall_and_execve_and_path_records():
    event = make_event(
        Action.EXEC, exe="/usr/bin/chmod", args=("chmod", "777", "/tmp/x"), path="/usr/bin/chmod"
    )
    event = msgspec.structs.replace(event, auditd={"syscall": "execve", "key": "", "auid": "1000"})
    syscall, execve, path = auditd_records(event)
    assert syscall == {
        "type": "SYSCALL",
        "syscall": "execve",
        "auid": "1000",
        "exe": "/usr/bin/chmod",
        "comm": "chmod",
    }
    assert execve == {"type": "EXECVE", "argc": "3", "a0": "chmod", "a1": "777", "a2": "/tmp/x"}
    assert path == {"type": "PATH", "name": "/usr/bin/chmod", "nametype": "NORMAL"}


def test_create_delete_and_rename_path_records():
    create = msgspec.structs.replace(make_event(Action.CREATE, path="/etc/x"), auditd={})
    assert auditd_records(create)[1:] == [{"type": "PATH", "name": "/etc/x", "nametype": "CREATE"}]
    rename = msgspec.structs.replace(
        make_event(Action.RENAME, path="/b", original_path="/a"), auditd={"type": "SYSCALL"}
    )
    assert [(r["name"], r["nametype"]) for r in auditd_records(rename)[1:]] == [
        ("/a", "DELETE"),
        ("/b", "CREATE"),
    ]


def test_stored_non_syscall_record_is_kept_as_is():
    event = msgspec.structs.replace(
        make_event(Action.EXEC, args=("x",)),
        auditd={"type": "EXECVE", "a0": "x", "argc": "1"},
    )
    records = auditd_records(event)
    assert [r["type"] for r in records] == ["EXECVE"]


def test_audit_record_searches_every_value():
    record = audit_record({"type": "EXECVE", "a0": "Init", "a1": "0"})
    assert record.folded_text == ("execve", "init", "0")
