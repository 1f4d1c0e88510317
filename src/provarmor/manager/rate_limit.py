"""The per-host rate limit of manual actions: the response policy's ``rate_limit``
(``manager.response_policy``; the policy's default without one) bounds how many actions
the API executes on one host in a window, as it bounds the automatic ones of a standalone
agent. Undos are never limited: taking an action back must always be possible."""

from __future__ import annotations

from pathlib import Path

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


def rate_limited(store: FindingsStore, limit: RateLimit, host: str, *, now_ns: int) -> str | None:
    """Why one more action on ``host`` would exceed ``limit`` (None: it would not)."""
    since = now_ns - seconds_to_ns(limit.seconds)
    if store.actions_executed(host, since_ns=since) >= limit.actions:
        return f"rate limit: {limit.actions} actions in {limit.seconds:g} s on host {host}"
    return None
