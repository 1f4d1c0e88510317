"""The per-host rate limit of manual actions: read from the response policy (its
default without one; an unreadable file named), counted from the executed steps of the
host's actions in the window only (real findings store, SQLite and PostgreSQL); an execute
over the limit writes nothing. Concurrent executes: routes/test_actions.py."""

from dataclasses import replace

import pytest

from provarmor.manager.actions import ActionAuditEntry, ActionRecord, ActionState, Execution
from provarmor.manager.rate_limit import execute_within, load_rate_limit, refusal
from provarmor.model.errors import ConfigError
from provarmor.response.policy import RateLimit
from provarmor.response.records import ActionKind

SECOND = 1_000_000_000


def test_the_limit_comes_from_the_policy_file(tmp_path):
    assert load_rate_limit(None) == RateLimit()
    policy = tmp_path / "policy.yaml"
    policy.write_text("rate_limit:\n  actions: 3\n  seconds: 60\n")
    assert load_rate_limit(policy) == RateLimit(actions=3, seconds=60.0)
    with pytest.raises(ConfigError) as caught:
        load_rate_limit(tmp_path / "missing.yaml")
    assert caught.value.location == str(tmp_path / "missing.yaml")


def record(action_id: str, host: str) -> ActionRecord:
    return ActionRecord(
        id=action_id,
        host=host,
        incident_id="",
        kind=ActionKind.KILL,
        request_json="{}",
        state=ActionState.PROPOSED,
        needs_approval=False,
        proposed_by="analyst:t",
        created_ns=0,
        updated_ns=0,
    )


def step(action_id: str, name: str, ts_ns: int) -> ActionAuditEntry:
    return ActionAuditEntry(
        action_id=action_id, ts_ns=ts_ns, author="analyst:t", step=name, state=ActionState.QUEUED
    )


def test_only_executions_of_the_host_within_the_window_count(store):
    now = 1_000 * SECOND
    for action_id, host, name, at in (
        ("a", "h1", "executed", now - 10 * SECOND),
        ("b", "h1", "executed", now - 100 * SECOND),  # before the window
        ("c", "h1", "undo (resume)", now - 5 * SECOND),  # undos do not count
        ("d", "h2", "executed", now - 5 * SECOND),  # another host
    ):
        store.add_action(record(action_id, host), audit=step(action_id, "proposed", 0))
        store.add_action_audit(step(action_id, name, at))
    limit = RateLimit(actions=2, seconds=60)

    def execute(action_id: str, host: str, at: int, *, new: bool = True) -> Execution:
        if new:
            store.add_action(record(action_id, host), audit=step(action_id, "proposed", 0))
        moved = replace(record(action_id, host), state=ActionState.QUEUED, updated_ns=at)
        entry = step(action_id, "executed", at)
        return execute_within(store, limit, moved, was=ActionState.PROPOSED, audit=entry)

    assert execute("e", "h1", now) is Execution.QUEUED
    assert execute("f", "h1", now + SECOND) is Execution.RATE_LIMITED
    assert store.action("f").state is ActionState.PROPOSED  # nothing written
    assert [e.step for e in store.action_audit("f")] == ["proposed"]
    assert execute("g", "h2", now + SECOND) is Execution.QUEUED  # another host
    assert execute("f", "h1", now + 60 * SECOND, new=False) is Execution.QUEUED  # window moved
    assert execute("e", "h1", now + 200 * SECOND, new=False) is Execution.CHANGED  # queued already
    assert refusal(limit, "h1") == "rate limit: 2 actions in 60 s on host h1"
