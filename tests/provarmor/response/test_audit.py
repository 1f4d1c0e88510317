"""The audit trail: records appended as JSON lines in an owner-only file and read back; a
damaged line is reported with its file:line and the others are kept; the version 1
fixture reads."""

import stat
from pathlib import Path

from provarmor.response.audit import AuditTrail, Phase, read_audit
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    ActionResult,
    FileTarget,
    Outcome,
    QuarantinedTarget,
)

DATA = Path(__file__).parents[2] / "data" / "response"
REQUEST = ActionRequest(
    id="act-1",
    kind=ActionKind.QUARANTINE,
    target=FileTarget(path="/tmp/implant"),
    requested_by="policy:contain",
    reason="incident inc-1 (high): implant",
    incident_id="inc-1",
)


def test_round_trip_and_owner_only(tmp_path):
    trail = AuditTrail(tmp_path / "state" / "actions.jsonl")
    trail.proposed(REQUEST, mode="enforce")
    trail.executing(REQUEST, mode="enforce")
    result = ActionResult(
        outcome=Outcome.DONE,
        message="quarantined",
        affected=("/tmp/implant",),
        undo_target=QuarantinedTarget(quarantine_id="ab" * 16),
    )
    trail.result(REQUEST, result, mode="enforce")
    assert stat.S_IMODE(trail.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(trail.path.parent.stat().st_mode) == 0o700
    records, errors = read_audit(trail.path)
    assert errors == []
    assert [r.phase for r in records] == [Phase.PROPOSED, Phase.EXECUTING, Phase.RESULT]
    assert records[2].request == REQUEST
    assert records[2].undo_target == QuarantinedTarget(quarantine_id="ab" * 16)
    assert records[0].time_ns <= records[2].time_ns


def test_a_damaged_line_is_reported_and_the_rest_kept(tmp_path):
    trail = AuditTrail(tmp_path / "actions.jsonl")
    trail.proposed(REQUEST, mode="dry-run")
    with trail.path.open("ab") as handle:
        handle.write(b'{"format_version": 1, "phase": "proposed"\n')
        handle.write(b'{"format_version": 9, "time_ns": 1, "phase": "proposed", "request": {}}\n')
    trail.proposed(REQUEST, mode="dry-run")
    records, errors = read_audit(trail.path)
    assert len(records) == 2
    assert [e.location for e in errors] == [f"{trail.path}:2", f"{trail.path}:3"]


def test_the_version_1_fixture_reads():
    records, errors = read_audit(DATA / "actions-v1.jsonl")
    assert errors == []
    assert [r.phase for r in records] == [
        Phase.PROPOSED,
        Phase.EXECUTING,
        Phase.RESULT,
        Phase.PROPOSED,
        Phase.EXECUTING,
        Phase.UNDONE,
    ]
    assert records[-1].undoes == records[0].request.id
