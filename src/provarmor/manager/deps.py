"""What every route depends on: the manager context (settings, stores, ingest, metrics), the
API error type, and authentication by Bearer token with role checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from provarmor.manager.auth import Principal, Role, bearer_token, secret_matches, split_token
from provarmor.manager.detectors import DetectionKit
from provarmor.manager.ingest import Ingestor
from provarmor.manager.metrics import ManagerMetrics
from provarmor.manager.settings import ManagerSettings
from provarmor.manager.store import FindingsStore
from provarmor.model.time_units import seconds_to_ns
from provarmor.response.policy import RateLimit

if TYPE_CHECKING:
    from provarmor.manager.bus_commands import CommandSender

LAST_USED_RESOLUTION_NS = seconds_to_ns(60)
"""A token's last use is written at most once a minute (not on every request)."""


class ApiError(Exception):
    """Answered as ``{"error": message, "field": field}`` with ``status``."""

    def __init__(self, status: int, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass(slots=True, kw_only=True)
class ManagerContext:
    settings: ManagerSettings
    store: FindingsStore
    kit: DetectionKit
    ingestor: Ingestor
    metrics: ManagerMetrics
    rate_limit: RateLimit = field(default_factory=RateLimit)
    """Of manual actions, per host (:mod:`provarmor.manager.rate_limit`)."""
    bus_commands: CommandSender | None = None
    """Cluster mode: commands go to the agents on the bus (else agents poll over HTTPS)."""


def get_context(request: Request) -> ManagerContext:
    context = request.app.state.context
    assert isinstance(context, ManagerContext)
    return context


def authenticate(request: Request) -> Principal:
    """The caller named by the Bearer token; 401 for a missing, malformed, unknown, expired,
    revoked or wrong token (one message for all, so the answer tells nothing about which).
    Records when the token was last used."""
    refused = ApiError(401, "missing or invalid bearer token", field="Authorization")
    text = bearer_token(request.headers.get("authorization"))
    parts = split_token(text) if text is not None else None
    if parts is None:
        raise refused
    token_id, secret = parts
    store = get_context(request).store
    record = store.token(token_id)
    if record is None or record.role is Role.ENROLL or record.revoked_ns:
        raise refused
    now = time.time_ns()
    if record.expires_ns and record.expires_ns <= now:
        raise refused
    if not secret_matches(secret, salt=record.salt, digest=record.digest):
        raise refused
    if now - record.last_used_ns >= LAST_USED_RESOLUTION_NS:
        store.touch_token(record.id, now_ns=now)
    return Principal(token_id=record.id, role=record.role)


def require(role: Role) -> Callable[[Request], Principal]:
    """A dependency: the authenticated caller, who must hold ``role`` (else 403)."""

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if not principal.may(role):
            raise ApiError(403, f"this needs the {role.value} role", field="Authorization")
        return principal

    return dependency


def require_agent(request: Request, agent_id: str) -> Principal:
    """The agent ``agent_id`` itself (its credential), else 401/403."""
    principal = require(Role.AGENT)(request)
    if principal.token_id != agent_id:
        raise ApiError(403, "an agent may only write as itself", field="agent_id")
    return principal
