"""Retention in the findings store, on SQLite and PostgreSQL: which incidents stay, alerts kept
by incidents past a whole batch of them, events by host and age."""

import json

from provarmor.manager import sql_retention
from provarmor.manager.actions import ActionAuditEntry, ActionRecord, ActionState
from provarmor.manager.auth import Role
from provarmor.manager.store import (
    AgentRecord,
    AlertQuery,
    AlertRow,
    BatchCommit,
    EventQuery,
    EventRow,
    FindingsCutoffs,
    IncidentQuery,
    IncidentRow,
    Note,
    Page,
    TokenRecord,
)
from provarmor.response.records import ActionKind

OLD, NEW = 100, 10_000
"""Data times before and after the cutoffs used here (5_000)."""
CUT = 5_000


def _agent(store, host: str) -> str:
    agent_id = f"agent-{host}"
    store.add_agent(
        AgentRecord(id=agent_id, host_id=host, hostname=host, enrolled_ns=1),
        credential=TokenRecord(id=agent_id, role=Role.AGENT, salt="0", digest="0", created_ns=1),
    )
    return agent_id


def _incident(incident_id: str, *, status: str, ts: int, alerts=(), nodes=()) -> IncidentRow:
    story = {"alert_ids": list(alerts), "nodes": [{"id": node} for node in nodes]}
    return IncidentRow(
        id=incident_id,
        host="h1",
        engine_id=incident_id,
        severity="high",
        score=1.0,
        status=status,
        title=incident_id,
        first_ts=ts,
        last_ts=ts,
        updated_ts=ts,
        version=1,
        json=json.dumps(story),
    )


def _alert(alert_id: str, ts: int) -> AlertRow:
    return AlertRow(
        host="h1",
        id=alert_id,
        rule_id="r",
        title="t",
        level="high",
        detector="sigma",
        first_ts=ts,
        last_ts=ts,
        score=1.0,
        json="{}",
    )


def _event(host: str, number: int, ts: int) -> EventRow:
    return EventRow(
        host=host,
        ts=ts,
        event_id=f"{host}-{number}",
        action="exec",
        process="p",
        executable="/bin/true",
        command_line="true",
        file_path="",
        remote="",
        json="{}",
    )


def _action(incident_id: str, state: ActionState) -> ActionRecord:
    return ActionRecord(
        id=f"act-{incident_id}",
        host="h1",
        incident_id=incident_id,
        kind=ActionKind.KILL,
        request_json="{}",
        state=state,
        needs_approval=False,
        proposed_by="analyst:x",
        created_ns=1,
        updated_ns=1,
    )


def _ids(store) -> list[str]:
    return sorted(row.id for row in store.incidents(IncidentQuery(page=Page(limit=100))))


def test_incidents_open_or_with_a_pending_action_stay(store):
    agent = _agent(store, "h1")
    incidents = [
        _incident("open", status="new", ts=OLD),
        _incident("seen", status="acknowledged", ts=OLD),
        _incident("done", status="resolved", ts=OLD),
        _incident("benign", status="false_positive", ts=OLD),
        _incident("recent", status="resolved", ts=NEW),
        _incident("acting", status="resolved", ts=OLD),
        _incident("acted", status="resolved", ts=OLD),
    ]
    store.commit_batch(BatchCommit(agent_id=agent, sequence=1, received_ns=1, incidents=incidents))
    for incident, state in (("acting", ActionState.QUEUED), ("acted", ActionState.DONE)):
        action = _action(incident, state)
        audit = ActionAuditEntry(action_id=action.id, ts_ns=1, author="x", step="p", state=state)
        assert store.add_action(action, audit=audit)
    store.add_note(Note(incident_id="done", ts_ns=1, author="x", text="closed"))

    report = store.prune(FindingsCutoffs(incidents_before=CUT, rows=2))

    assert report.incidents == 3
    assert _ids(store) == ["acting", "open", "recent", "seen"]
    assert store.notes("done") == []
    assert store.action("act-acted") is not None  # the audit trail of actions stays


def test_alerts_named_by_incidents_stay_past_a_whole_batch_of_them(store):
    agent = _agent(store, "h1")
    named = [f"a{i:02}" for i in range(7)]
    alerts = [_alert(alert, OLD + i) for i, alert in enumerate(named)]
    alerts += [_alert(f"z{i}", OLD + 50 + i) for i in range(3)] + [_alert("fresh", NEW)]
    incident = _incident("open", status="new", ts=OLD, alerts=named, nodes=["p1", "f1"])
    store.commit_batch(
        BatchCommit(agent_id=agent, sequence=1, received_ns=1, alerts=alerts, incidents=[incident])
    )
    report = store.prune(FindingsCutoffs(alerts_before=CUT, incidents_before=CUT, rows=3))
    left = sorted(row.id for row in store.alerts(AlertQuery(page=Page(limit=100))))
    assert left == [*named, "fresh"]
    assert report.alerts == 3
    assert report.kept_nodes == {"h1": frozenset({"p1", "f1"})}


def test_events_go_by_host_and_age_in_batches(store):
    rows = [_event("h1", i, OLD + i) for i in range(7)] + [_event("h1", 99, NEW)]
    rows_2 = [_event("h2", i, OLD) for i in range(4)]
    for host, batch in (("h1", rows), ("h2", rows_2)):
        agent = _agent(store, host)
        store.commit_batch(BatchCommit(agent_id=agent, sequence=1, received_ns=1, events=batch))
    report = store.prune(FindingsCutoffs(events_before=CUT, rows=3))
    left = store.search_events(EventQuery(page=Page(limit=100)))
    assert report.events == 11
    assert [row.event_id for row in left] == ["h1-99"]
    assert sorted(sql_retention.hosts(store._db)) == ["h1", "h2"]


def test_nothing_is_deleted_with_every_bound_off(store):
    agent = _agent(store, "h1")
    store.commit_batch(
        BatchCommit(
            agent_id=agent,
            sequence=1,
            received_ns=1,
            events=[_event("h1", 1, OLD)],
            alerts=[_alert("a", OLD)],
            incidents=[_incident("done", status="resolved", ts=OLD)],
        )
    )
    report = store.prune(FindingsCutoffs())
    assert (report.events, report.alerts, report.incidents, report.events_for_size) == (0, 0, 0, 0)
    assert _ids(store) == ["done"]


def test_the_last_report_is_kept_and_replaced(store):
    assert store.retention_record() == ""
    store.record_retention('{"n": 1}')
    store.record_retention('{"n": 2}')
    assert store.retention_record() == '{"n": 2}'
