from __future__ import annotations

import pytest

from provarmor.model.actions import Action
from provarmor.model.errors import ParseError
from provarmor.model.ids import process_entity_id
from provarmor.sources.auditd.coalescer import AuditGroup
from provarmor.sources.auditd.mapper import AuditMapper
from provarmor.sources.auditd.records import AuditRecord
from provarmor.sources.base import HostContext, IngestReport

HOST = HostContext(id="vm1", boot_id="boot-1")


def _map_all(groups, mapper=None):
    report = IngestReport(source="x")
    mapper = mapper or AuditMapper(host=HOST, report=report, source="x.log")
    events = []
    for group in groups:
        events += mapper.map_group(group)
    mapper.flush()
    return events, mapper.report


def test_clone3_child_gets_its_fork_when_it_first_acts(auditd_data, auditd_groups):
    events, report = _map_all(auditd_groups(auditd_data / "posix_spawn.log"))
    forks = [e for e in events if e.event.action == Action.FORK]
    spawned = [e for e in events if e.process.pid == 4179]

    (fork,) = forks
    assert fork is spawned[0]
    assert fork.event.id == "vm1:1795876939.361:5255:0"  # the clone3 event
    assert fork.log.line == 159
    assert fork.process.start == fork.timestamp == 1_795_876_939_361_000_000
    assert fork.process.entity_id == process_entity_id(
        host_id="vm1", boot_id="boot-1", pid=4179, start=fork.timestamp
    )
    assert fork.process.parent.pid == 4178
    exec_event = spawned[1]
    assert exec_event.event.action == Action.EXEC
    assert exec_event.process.entity_id == fork.process.entity_id
    assert exec_event.process.args == ("true", "spawned")
    assert report.skipped["clone3_unresolved"] == 0


def test_clone3_threads_never_become_processes(auditd_data, auditd_groups):
    events, report = _map_all(auditd_groups(auditd_data / "curl_http.log"))

    assert not [e for e in events if e.event.action == Action.FORK]
    assert not [e for e in events if e.process.pid == 12062]
    assert report.skipped["clone3_unresolved"] == 1


def test_unmapped_syscalls_are_counted(auditd_data, auditd_groups):
    _, report = _map_all(auditd_groups(auditd_data / "pipeline.log"))

    assert report.skipped["syscall:write"] == 1


def _group(fields, line=12):
    record = AuditRecord("SYSCALL", "1.000:7", fields, "", line)
    group = AuditGroup("1.000:7", 7, 1_000_000_000, line)
    group.add(record)
    return group


@pytest.mark.parametrize(
    "fields",
    [
        {"arch": "c000003e", "syscall": "59"},
        {"arch": "c000003e", "syscall": "59", "pid": "x"},
        {"arch": "c000003e", "syscall": "257", "pid": "5", "exit": "abc"},
        {"arch": "c000003e", "syscall": "257", "pid": "5", "a2": "zz"},
        {"arch": "c000003e", "syscall": "42", "pid": "5", "a0": "3", "ppid": "-"},
    ],
)
def test_records_missing_or_mangling_fields_raise_parse_error(fields):
    mapper = AuditMapper(host=HOST, report=IngestReport(source="x"), source="x.log")

    with pytest.raises(ParseError) as info:
        mapper.map_group(_group(fields))
    assert info.value.location == "x.log:12"


def test_group_without_syscall_record_maps_to_nothing():
    report = IngestReport(source="x")
    mapper = AuditMapper(host=HOST, report=report, source="x.log")

    assert mapper.map_group(AuditGroup("1.000:7", 7, 1, 3)) == []
    assert report.skipped["incomplete_event"] == 1
