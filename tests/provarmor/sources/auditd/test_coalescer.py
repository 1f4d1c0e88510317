from __future__ import annotations

import pytest

from provarmor.model.errors import ParseError
from provarmor.sources.auditd.coalescer import Coalescer
from provarmor.sources.auditd.records import WANTED_TYPES, AuditRecord, parse_audit_line


def _records(path, first=1, last=None):
    lines = path.read_text().split("\n")
    chosen = lines[first - 1 : last]
    records = [parse_audit_line(line, line=n) for n, line in enumerate(chosen, first) if line]
    return [record for record in records if record.type in WANTED_TYPES]


def _feed(coalescer, records):
    closed = []
    for record in records:
        closed += coalescer.push(record)
    return closed


def test_coalescer_closes_a_group_at_its_proctitle_record(auditd_data):
    coalescer = Coalescer()
    syscall, proctitle = _records(auditd_data / "pipeline.log", 3, 4)

    assert coalescer.push(syscall) == ()
    (group,) = coalescer.push(proctitle)

    assert group.stamp == "1795875746.197:4103"
    assert group.serial == 4103
    assert group.timestamp == 1_795_875_746_197_000_000
    assert group.line == 3
    assert group.syscall is syscall
    assert [r.type for r in group.records] == ["SYSCALL", "PROCTITLE"]
    assert group.complete
    assert coalescer.open_groups == 0


def test_coalescer_keeps_interleaved_events_apart(auditd_data):
    # lines 97-101: exit_group 4127 and mmap 4128 interleave
    coalescer = Coalescer()

    closed = _feed(coalescer, _records(auditd_data / "pipeline.log", 97, 101))

    assert [group.serial for group in closed] == [4127, 4128]
    assert [r.type for r in closed[1].records] == ["SYSCALL", "MMAP", "PROCTITLE"]
    assert closed[1].line == 98
    assert coalescer.incomplete == 0


def test_whole_fixture_coalesces_into_complete_syscall_groups(auditd_data):
    coalescer = Coalescer()

    closed = _feed(coalescer, _records(auditd_data / "attack_chain.log")) + coalescer.flush()

    assert len(closed) == 159
    assert all(group.syscall is not None and group.complete for group in closed)
    assert all(len({r.stamp for r in group.records}) == 1 for group in closed)
    assert coalescer.incomplete == 0
    assert coalescer.groups == 159


def test_eoe_after_proctitle_opens_nothing(auditd_netlink):
    coalescer = Coalescer()
    records = [r for r in auditd_netlink("attack_chain.netlink.jsonl") if r.type in WANTED_TYPES]

    closed = _feed(coalescer, records)

    assert sum(r.type == "EOE" for r in records) == 159
    assert len(closed) == 159
    assert coalescer.open_groups == 0
    assert coalescer.incomplete == 0


def test_eoe_closes_a_group_without_proctitle(auditd_netlink):
    records = [r for r in auditd_netlink("attack_chain.netlink.jsonl") if r.type in WANTED_TYPES]
    syscall = records[0]
    eoe = next(r for r in records if r.type == "EOE" and r.stamp == syscall.stamp)
    coalescer = Coalescer()

    coalescer.push(syscall)
    (group,) = coalescer.push(eoe)

    assert group.records == [syscall, eoe]
    assert group.complete


def test_window_closes_a_group_that_lost_its_end(auditd_data):
    records = _records(auditd_data / "pipeline.log")
    first = records[0]  # SYSCALL 4103, its PROCTITLE left out
    following = [r for r in records if r.serial in (4104, 4105)]
    next_syscall = next(r for r in records if r.serial == 4106)
    coalescer = Coalescer(window=3)

    closed = _feed(coalescer, [first, *following])
    assert [group.serial for group in closed] == [4104, 4105]
    closed = coalescer.push(next_syscall)  # the third event newer than 4103 begins

    assert [group.serial for group in closed] == [4103]
    assert not closed[0].complete
    assert coalescer.incomplete == 1


def test_a_far_off_serial_does_not_close_open_groups(auditd_data):
    syscall, proctitle = _records(auditd_data / "pipeline.log", 3, 4)
    stray = AuditRecord("SYSCALL", "1795875746.201:999999", {"pid": "1"}, "", 9)
    coalescer = Coalescer()

    assert coalescer.push(syscall) == ()
    assert coalescer.push(stray) == []
    (group,) = coalescer.push(proctitle)

    assert group.complete
    assert group.records == [syscall, proctitle]


def test_max_open_closes_the_oldest_group(auditd_data):
    syscalls = [r for r in _records(auditd_data / "pipeline.log") if r.type == "SYSCALL"][:4]
    coalescer = Coalescer(max_open=2)

    closed = _feed(coalescer, syscalls)

    assert [group.serial for group in closed] == [4103, 4104]
    assert coalescer.open_groups == 2


def test_end_of_input_flush_counts_groups_missing_their_end(auditd_data):
    syscall, _ = _records(auditd_data / "pipeline.log", 3, 4)
    coalescer = Coalescer()
    coalescer.push(syscall)

    (group,) = coalescer.flush()

    assert group.syscall is syscall
    assert coalescer.incomplete == 1
    assert coalescer.flush() == []


def test_record_after_its_group_closed_is_an_incomplete_group(auditd_data):
    syscall, proctitle = _records(auditd_data / "pipeline.log", 3, 4)
    coalescer = Coalescer()
    _feed(coalescer, [syscall, proctitle])

    (late,) = coalescer.push(proctitle)

    assert late.syscall is None
    assert coalescer.incomplete == 1


def test_malformed_stamp_of_a_new_group_raises_parse_error():
    record = AuditRecord("SYSCALL", "12x.5:7", {"pid": "1"}, "", 9)

    with pytest.raises(ParseError) as info:
        Coalescer(source="audit.log").push(record)
    assert info.value.location == "audit.log:9"
