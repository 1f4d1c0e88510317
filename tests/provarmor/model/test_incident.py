from __future__ import annotations

import msgspec
import pytest

from provarmor.model.attack import AttackRef
from provarmor.model.incident import (
    Incident,
    IncidentEdge,
    IncidentNode,
    IncidentStatus,
    NodeRole,
    Step,
)


def sample() -> Incident:
    return Incident(
        id="inc-c1",
        campaign_id="c1",
        host_id="h1",
        title="Hidden program executed",
        summary="A shell started by python3 ran curl.",
        severity="high",
        score=12.5,
        first_ts=10,
        last_ts=20,
        updated_ts=20,
        root_cause="p1",
        nodes=(
            IncidentNode(id="p1", kind="process", label="/bin/sh", role=NodeRole.ROOT_CAUSE, pid=7),
            IncidentNode(id="f1", kind="file", label="/tmp/x", role=NodeRole.IMPACTED),
        ),
        edges=(IncidentEdge(src="p1", dst="f1", action="write", first_ts=11, last_ts=12),),
        steps=(
            Step(
                timestamp=11,
                subject="p1",
                object="f1",
                action="write",
                text="sh wrote /tmp/x",
                techniques=(AttackRef(id="T1105", name="Ingress Tool Transfer"),),
            ),
        ),
        techniques=(AttackRef(id="T1105", name="Ingress Tool Transfer"),),
        impacted_files=("/tmp/x",),
    )


def test_incident_round_trips_through_json() -> None:
    incident = sample()
    raw = msgspec.json.encode(incident)
    assert msgspec.json.decode(raw, type=Incident) == incident
    document = msgspec.json.decode(raw)
    # omitted defaults keep stored incidents small; decoding restores them
    assert "status" not in document and "merged_ids" not in document
    assert document["nodes"][0]["role"] == "root_cause"
    decoded = msgspec.json.decode(raw, type=Incident)
    assert (decoded.status, decoded.version) == (IncidentStatus.NEW, 1)


def test_incident_is_immutable_and_finds_nodes() -> None:
    incident = sample()
    assert incident.status is IncidentStatus.NEW
    assert incident.node("p1") is not None and incident.node("p1").pid == 7  # type: ignore[union-attr]
    assert incident.node("missing") is None
    with pytest.raises(AttributeError):
        incident.title = "changed"  # type: ignore[misc]
