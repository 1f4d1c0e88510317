"""The responder on real processes: dry-run records and touches nothing, enforce acts,
an incident's later versions (and a restarted responder) never ask twice, the rate limit
holds, off does nothing, and an action is undone through the audit trail."""

import dataclasses

import msgspec
import pytest

from provarmor.model.attack import AttackRef
from provarmor.model.incident import Incident, IncidentNode, NodeRole
from provarmor.response.audit import AuditTrail, Phase, read_audit
from provarmor.response.policy import Mode, Policy, PolicyRule, RateLimit
from provarmor.response.records import ActionKind, Outcome
from provarmor.response.responder import Responder

from .conftest import move_into, state_of, target_of, wait_for

pytestmark = pytest.mark.privileged


def story(context, *pids: int, severity: str = "high") -> Incident:
    nodes = []
    for pid in pids:
        target = target_of(pid, context)
        nodes.append(
            IncidentNode(
                id=target.entity_id,
                kind="process",
                label="sleep",
                role=NodeRole.TERMINAL,
                pid=pid,
                executable=target.executable,
                alert_ids=(f"alert-{pid}",),
            )
        )
    return Incident(
        id="inc-1",
        campaign_id="c",
        host_id=context.host.id,
        title="test incident",
        summary="",
        severity=severity,
        score=10.0,
        first_ts=1,
        last_ts=2,
        updated_ts=2,
        root_cause="",
        nodes=tuple(nodes),
        techniques=(AttackRef(id="T1059.004", name="Unix Shell"),),
    )


def policy(mode: Mode, *actions: ActionKind, limit: int = 20, **conditions) -> Policy:
    rule = PolicyRule(name="contain", actions=actions, **conditions)
    return Policy(mode=mode, rules=(rule,), rate_limit=RateLimit(actions=limit, seconds=3600))


def test_dry_run_records_what_it_would_do_and_touches_nothing(context, spawn):
    process = spawn("sleep", "300")
    responder = Responder.open(policy(Mode.DRY_RUN, ActionKind.KILL), context)
    [record] = responder.on_incident(story(context, process.pid), rule_ids=set())
    assert record.outcome is Outcome.DRY_RUN
    assert record.message.startswith(f"would kill pid {process.pid}")
    assert process.poll() is None
    records, _ = read_audit(context.settings.audit_file)
    assert [r.phase for r in records] == [Phase.PROPOSED, Phase.RESULT]
    assert records[0].request.reason.startswith("incident inc-1 (high)")
    assert records[0].request.requested_by == "policy:contain"


def test_enforce_acts_once_per_incident_and_target(context, spawn):
    process = spawn("sleep", "300")
    incident = story(context, process.pid)
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.SUSPEND, ActionKind.KILL), context)
    first = responder.on_incident(incident, rule_ids=set())
    assert [(r.request.kind, r.outcome) for r in first] == [
        (ActionKind.SUSPEND, Outcome.DONE),
        (ActionKind.KILL, Outcome.DONE),
    ]
    process.wait(timeout=5)
    assert responder.on_incident(msgspec.structs.replace(incident, version=2), rule_ids=set()) == []
    again = Responder.open(responder.policy, context)  # a restarted agent
    assert again.on_incident(incident, rule_ids=set()) == []


def test_conditions_and_off(context, spawn):
    process = spawn("sleep", "300")
    incident = story(context, process.pid, severity="medium")
    strict = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL, severity="high"), context)
    assert strict.on_incident(incident, rule_ids=set()) == []
    other = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL, rule_ids=("r-9",)), context)
    assert other.on_incident(incident, rule_ids={"r-1"}) == []
    technique = Responder.open(policy(Mode.OFF, ActionKind.KILL, techniques=("T1059",)), context)
    assert technique.on_incident(incident, rule_ids=set()) == []
    assert process.poll() is None
    assert not context.settings.audit_file.exists()


def test_a_scoped_responder_leaves_incidents_with_a_process_outside_the_scope_alone(
    context, spawn, scope_group
):
    inside, outside = spawn("sleep", "300"), spawn("sleep", "300")
    move_into(scope_group, inside.pid)
    settings = dataclasses.replace(context.settings, process_scope=f"/{scope_group.name}")
    scoped = dataclasses.replace(context, settings=settings)
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL), scoped)
    assert responder.on_incident(story(context, outside.pid, inside.pid), rule_ids=set()) == []
    assert responder.counters["out_of_scope"] == 1
    assert outside.poll() is None and inside.poll() is None
    assert not settings.audit_file.exists()
    [record] = responder.on_incident(story(context, inside.pid), rule_ids=set())
    assert record.outcome is Outcome.DONE
    inside.wait(timeout=5)
    assert outside.poll() is None


def test_the_rate_limit_refuses_past_its_count(context, spawn):
    first, second = spawn("sleep", "300"), spawn("sleep", "300")
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL, limit=1), context)
    results = responder.on_incident(story(context, first.pid, second.pid), rule_ids=set())
    assert [r.outcome for r in results] == [Outcome.DONE, Outcome.REFUSED]
    assert "rate limit" in results[1].message
    assert second.poll() is None
    assert responder.counters["rate_limited"] == 1


def test_undo_resumes_a_suspended_process(context, spawn):
    process = spawn("sleep", "300")
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.SUSPEND), context)
    [done] = responder.on_incident(story(context, process.pid), rule_ids=set())
    wait_for(lambda: state_of(process.pid) == "T", what="stopped")
    undone = responder.undo(done, requested_by="alice", reason="false positive")
    assert undone.phase is Phase.UNDONE and undone.outcome is Outcome.DONE
    assert undone.undoes == done.request.id and undone.request.requested_by == "alice"
    wait_for(lambda: state_of(process.pid) == "S", what="running again")
    with pytest.raises(ValueError, match="cannot be undone"):
        responder.undo(undone, requested_by="alice")


def test_a_request_with_the_wrong_kind_of_target_is_refused(context):
    from provarmor.response.records import ActionRequest, FileTarget

    responder = Responder.open(Policy(), context)
    request = ActionRequest(
        id="x", kind=ActionKind.KILL, target=FileTarget(path="/tmp/x"), requested_by="t"
    )
    record = responder.run(request)
    assert record.outcome is Outcome.REFUSED and "ProcessTarget" in record.message


def test_a_host_failure_is_a_failed_result_not_a_crash(context, tmp_path):
    """The quarantine store cannot be made (its folder is a file): the action fails, is
    audited, and the responder goes on."""
    import dataclasses

    from provarmor.response.records import ActionRequest, FileTarget

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    settings = dataclasses.replace(context.settings, state_dir=blocked / "response")
    broken = dataclasses.replace(context, settings=settings)
    implant = tmp_path / "implant"
    implant.write_text("x")
    responder = Responder(policy=Policy(), context=broken, audit=AuditTrail(tmp_path / "a.jsonl"))
    request = ActionRequest(
        id="q", kind=ActionKind.QUARANTINE, target=FileTarget(path=str(implant)), requested_by="t"
    )
    record = responder.run(request)
    assert record.outcome is Outcome.FAILED and "quarantine" in record.message
    assert implant.read_text() == "x"
