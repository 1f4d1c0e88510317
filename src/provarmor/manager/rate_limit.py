"""The per-host rate limit of manual actions: the response policy's ``rate_limit``
(``manager.response_policy``; the policy's default without one) bounds how many actions
the API executes on one host in a window, as it bounds the automatic ones of a standalone
agent. Undos are never limited: taking an action back must always be possible.

The count and the execute are one store transaction under a per-host lock
(:meth:`FindingsStore.execute_action`), so concurrent executes, in one manager or in several
sharing a database, cannot together go past the limit."""

from __future__ import annotations

from pathlib import Path

from provarmor.manager.actions import ActionAuditEntry, ActionRecord, ActionState, Execution
from provarmor.manager.store import FindingsStore
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import seconds_to_ns
from provarmor.response.policy import RateLimit, parse_policy


def load_rate_limit(policy_file: Path | None) -> RateLimit:
    if policy_file is None:
        return RateLimit()
    try:
        text = policy_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the response policy: {exc}", location=str(policy_file)
        ) from None
    return parse_policy(text, source=str(policy_file)).rate_limit


def execute_within(
    store: FindingsStore,
    limit: RateLimit,
    moved: ActionRecord,
    *,
    was: ActionState,
    audit: ActionAuditEntry,
) -> Execution:
    """Queue ``moved`` (an action in state ``was`` until now) unless its host had ``limit``'s
    executions in the window before ``moved.updated_ns``; the store counts and writes in one
    transaction (see :meth:`FindingsStore.execute_action`)."""
    since = moved.updated_ns - seconds_to_ns(limit.seconds)
    return store.execute_action(moved, was=was, audit=audit, at_most=limit.actions, since_ns=since)


def refusal(limit: RateLimit, host: str) -> str:
    return f"rate limit: {limit.actions} actions in {limit.seconds:g} s on host {host}"
