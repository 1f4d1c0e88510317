"""From an incident to requests: which processes, files, endpoints and users each action
targets."""

from provarmor.model.incident import Incident, IncidentNode, NodeRole
from provarmor.response.planner import plan_requests, request_id, target_key
from provarmor.response.policy import PolicyRule
from provarmor.response.records import (
    ActionKind,
    FileTarget,
    HostTarget,
    NetworkTarget,
    ProcessTarget,
    UserTarget,
)


def incident(nodes: tuple[IncidentNode, ...], **extra) -> Incident:
    return Incident(
        id="inc-1",
        campaign_id="c",
        host_id="h",
        title="implant",
        summary="",
        severity="high",
        score=9.0,
        first_ts=1,
        last_ts=2,
        updated_ts=2,
        root_cause="web",
        nodes=nodes,
        **extra,
    )


NODES = (
    IncidentNode(id="web", kind="process", label="python3", role=NodeRole.ROOT_CAUSE, pid=10),
    IncidentNode(
        id="sh",
        kind="process",
        label="sh",
        role=NodeRole.TERMINAL,
        pid=11,
        alert_ids=("a1",),
        user="www-data",
        executable="/bin/sh",
    ),
    IncidentNode(
        id="imp",
        kind="process",
        label="implant",
        role=NodeRole.TERMINAL,
        pid=12,
        alert_ids=("a2",),
        user="www-data",
        executable="/tmp/implant",
    ),
    IncidentNode(
        id="file:h:/tmp/implant", kind="file", label="/tmp/implant", role=NodeRole.IMPACTED
    ),
    IncidentNode(
        id="sock:198.51.100.9:4444",
        kind="socket",
        label="198.51.100.9:4444",
        role=NodeRole.IMPACTED,
        ip="198.51.100.9",
        port=4444,
    ),
)
STORY = incident(
    NODES,
    impacted_files=("/tmp/implant", "/etc/passwd"),
    contacted_endpoints=("198.51.100.9:4444",),
)
RULE = PolicyRule(name="r", actions=(), isolate_release_seconds=60)


def targets(kind: ActionKind):
    return [r.target for r in plan_requests(STORY, RULE, kinds=(kind,))]


def test_processes_that_raised_signals_are_the_kill_targets():
    assert targets(ActionKind.KILL) == [
        ProcessTarget(entity_id="sh", pid=11, executable="/bin/sh"),
        ProcessTarget(entity_id="imp", pid=12, executable="/tmp/implant"),
    ]


def test_only_dropped_programs_are_quarantined():
    assert targets(ActionKind.QUARANTINE) == [FileTarget(path="/tmp/implant")]


def test_contacted_endpoints_are_blocked():
    assert targets(ActionKind.BLOCK) == [NetworkTarget(ip="198.51.100.9", port=4444)]


def test_isolation_and_users():
    assert targets(ActionKind.ISOLATE) == [HostTarget(release_after_seconds=60)]
    assert targets(ActionKind.LOCK_USER) == [UserTarget(name="www-data")]


def test_requests_carry_why_and_a_stable_id():
    first = plan_requests(STORY, RULE, kinds=(ActionKind.KILL,))[0]
    assert first.requested_by == "policy:r" and first.incident_id == "inc-1"
    assert "inc-1" in first.reason and first.host_id == "h"
    assert first.id == request_id("inc-1", target_key(ActionKind.KILL, first.target))
    assert first.id != request_id("inc-2", target_key(ActionKind.KILL, first.target))
