"""Audit results as OCSF 1.3 Remediation events: class per target kind, D3FEND activity,
status from the outcome; proposals are no events."""

from pathlib import Path

import pytest

from provarmor.response.audit import read_audit
from provarmor.response.ocsf import remediation_event
from provarmor.response.records import ActionKind

DATA = Path(__file__).parents[2] / "data" / "response"


@pytest.fixture
def records():
    found, errors = read_audit(DATA / "actions-v1.jsonl")
    assert errors == []
    return found


def test_quarantine_result_is_a_file_eviction(records):
    event = remediation_event(records[2])
    assert event is not None
    assert (event["category_uid"], event["class_uid"], event["activity_id"]) == (7, 7002, 2)
    assert event["type_uid"] == 700202
    assert (event["status_id"], event["status"]) == (1, "Success")
    assert event["file"]["path"] == "/tmp/.x/implant"
    assert event["command_uid"] == records[2].request.id
    assert event["actor"]["user"]["name"] == "policy:contain implants"
    assert event["metadata"]["correlation_uid"] == "inc-7"
    assert event["time"] == records[2].time_ns // 1_000_000


def test_restore_is_a_restore_and_proposals_are_no_events(records):
    assert remediation_event(records[0]) is None and remediation_event(records[1]) is None
    event = remediation_event(records[5])
    assert event is not None and (event["class_uid"], event["activity_name"]) == (7002, "Restore")


def test_every_action_has_a_class_and_an_activity():
    from provarmor.response.ocsf import ACTIVITY, CLASS

    assert set(ACTIVITY) == set(ActionKind) == set(CLASS)
