"""The per-host rate limit of manual actions: read from the response policy (its
default without one; an unreadable file named), counted from the executed steps of the
host's actions in the window only (real findings store, SQLite and PostgreSQL)."""

import pytest

from provarmor.manager.actions import ActionAuditEntry, ActionRecord, ActionState
from provarmor.manager.rate_limit import load_rate_limit, rate_limited
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
    assert store.actions_executed("h1", since_ns=now - 60 * SECOND) == 1
    assert rate_limited(store, limit, "h1", now_ns=now) is None
    store.add_action(record("e", "h1"), audit=step("e", "proposed", 0))
    store.add_action_audit(step("e", "executed", now - SECOND))
    assert (
        rate_limited(store, limit, "h1", now_ns=now) == "rate limit: 2 actions in 60 s on host h1"
    )
    assert rate_limited(store, limit, "h2", now_ns=now) is None
    assert rate_limited(store, limit, "h1", now_ns=now + 60 * SECOND) is None  # window moved
