from __future__ import annotations

from provarmor.model.actions import Action
from provarmor.sources.auditd.records import parse_audit_line
from provarmor.sources.auditd.stream import AuditEventStream
from provarmor.sources.base import HostContext, IngestReport

HOST = HostContext(id="vm1", boot_id="boot-1")


def test_live_style_feed_with_idle_flush(auditd_netlink):
    report = IngestReport(source="netlink")
    stream = AuditEventStream(host=HOST, report=report, source="netlink", lookahead=4)
    records = auditd_netlink("attack_chain.netlink.jsonl")

    early = []
    for record in records[:40]:
        early += stream.push(record)
    held = stream.flush_pending()  # the socket went idle
    late = []
    for record in records[40:]:
        late += stream.push(record)
    late += stream.close()

    assert early  # events flow before the end of input
    assert held
    ids = [e.event.id for e in early + held + late]
    assert len(ids) == len(set(ids)) == report.events == 148
    assert report.skipped["LOGIN"] == 1
    assert report.skipped["BPRM_FCAPS"] == 7


def test_stream_skips_unwanted_types_and_rejects_bad_stamps(auditd_data):
    report = IngestReport(source="x")
    stream = AuditEventStream(host=HOST, report=report, source="x.log")
    line = (auditd_data / "pipeline.log").read_text().split("\n")[5]  # BPRM_FCAPS
    bad = parse_audit_line("type=SYSCALL msg=audit(1.000:1): pid=1", line=3)._replace(stamp="bad")

    assert not stream.wants("BPRM_FCAPS")
    assert stream.push(parse_audit_line(line)) == []
    assert stream.push(bad) == []

    assert report.skipped["BPRM_FCAPS"] == 1
    assert report.rejected == 1
    assert report.errors == ["x.log:3: malformed audit(TIME:SERIAL) stamp ('bad')"]


def test_stream_table_can_be_seeded_before_reading(auditd_data):
    report = IngestReport(source="x")
    stream = AuditEventStream(host=HOST, report=report, source="x.log")
    stream.table.seed(11957, entity_id="seeded-shell", start=123, executable="/usr/bin/bash")
    events = []
    for number, line in enumerate((auditd_data / "pipeline.log").read_text().split("\n"), 1):
        if line:
            events += stream.push(parse_audit_line(line, line=number))
    events += stream.close()

    shell_exec = next(e for e in events if e.event.action == Action.EXEC)
    assert shell_exec.process.entity_id == "seeded-shell"
    assert shell_exec.process.start == 123
    forks = [e for e in events if e.event.action == Action.FORK]
    assert {f.process.parent.entity_id for f in forks} == {"seeded-shell"}
