"""Analysts' exceptions: what marking an incident or an alert benign proposes, an admin
confirms, and every host's analysis then applies to the next events.

An :class:`ExceptionRecord` is a :class:`~provarmor.detection.suppress.Suppression` with a
life: ``proposed`` (an analyst marked something benign; not applied), ``active`` (an admin
confirmed it; applied), ``disabled`` (kept, not applied; may be enabled again) and
``deleted`` (kept for the audit trail only). Its scope is one host (``host``) or the whole
fleet. Every change is an :class:`AuditEntry` (who, when, what, why, and the exception as it
stood after the change), appended and never rewritten.

:func:`check_scope` refuses what would silence too much: no rule, a wildcard rule, no acting
executable, or a pattern with too little literal text (``*``, ``/usr/bin/*``); the error
names the offending field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from provarmor.detection.suppress import Suppression
from provarmor.model.errors import ProvArmorError

MAX_PATTERNS = 50
"""Patterns per condition."""
MAX_PATTERN_LENGTH = 1000
_GLOB = re.compile(r"[*?\[\]!]")
_LITERAL = re.compile(r"[A-Za-z0-9]")


class ExceptionState(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


class ExceptionScope(StrEnum):
    HOST = "host"
    FLEET = "fleet"


class ScopeError(ProvArmorError):
    """An exception that is empty or too broad; ``field`` names the offending part."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, location=field)
        self.field = field


@dataclass(frozen=True, slots=True, kw_only=True)
class Conditions:
    """When an exception holds: the rules it silences, and globs on the acting process, its
    lineage (nearest ancestor first, in order), the object (file path or remote endpoint)
    and the user."""

    rules: tuple[str, ...]
    executables: tuple[str, ...] = ()
    lineage: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "rules": list(self.rules),
            "executables": list(self.executables),
            "lineage": list(self.lineage),
            "paths": list(self.paths),
            "endpoints": list(self.endpoints),
            "users": list(self.users),
        }

    @classmethod
    def from_json(cls, text: str) -> Conditions:
        data = json.loads(text)
        return cls(**{key: tuple(data.get(key, ())) for key in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceptionRecord:
    id: str
    state: ExceptionState
    scope: ExceptionScope
    host: str
    """The host of a host-scoped exception; empty for the fleet."""
    conditions: Conditions
    reason: str
    source: str
    """What it was proposed from: ``incident:<id>`` or ``alert:<host>/<id>``."""
    created_ns: int
    created_by: str
    updated_ns: int
    hits: int = 0
    """Alerts it suppressed while active."""
    last_hit_ns: int = 0

    @property
    def signature(self) -> str:
        """Same scope, host and conditions: the same exception (a re-run proposes nothing new)."""
        text = json.dumps([self.scope, self.host, self.conditions.to_dict()], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def to_suppression(self) -> Suppression:
        conditions = self.conditions
        return Suppression(
            name=self.id,
            rules=conditions.rules,
            hosts=(self.host,) if self.scope is ExceptionScope.HOST else (),
            executables=conditions.executables,
            lineage=conditions.lineage,
            paths=conditions.paths,
            endpoints=conditions.endpoints,
            users=conditions.users,
            reason=self.reason,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    exception_id: str
    ts_ns: int
    author: str
    action: str
    """``proposed``, ``edited``, ``confirmed``, ``disabled``, ``enabled`` or ``deleted``."""
    reason: str
    state: str
    """The state after the change."""
    snapshot: str = field(default="")
    """The exception's scope, host and conditions after the change (JSON)."""


def snapshot(record: ExceptionRecord) -> str:
    return json.dumps(
        {"scope": record.scope, "host": record.host, **record.conditions.to_dict()},
        sort_keys=True,
    )


def too_broad(pattern: str) -> str:
    """Why ``pattern`` would match too much, or ``""``."""
    literal = _GLOB.sub("", pattern)
    if len(_LITERAL.findall(literal)) < 3:
        return "needs at least 3 letters or digits outside wildcards"
    if pattern.startswith("/"):
        last = pattern.rstrip("/").rsplit("/", 1)[-1]
        if len(_LITERAL.findall(_GLOB.sub("", last))) < 2:
            return "its last path part needs at least 2 letters or digits outside wildcards"
    return ""


def _check_patterns(name: str, patterns: tuple[str, ...]) -> None:
    if len(patterns) > MAX_PATTERNS:
        raise ScopeError(f"at most {MAX_PATTERNS} patterns", field=name)
    for index, pattern in enumerate(patterns):
        where = f"{name}[{index}]"
        if not pattern.strip():
            raise ScopeError("an empty pattern", field=where)
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ScopeError(f"longer than {MAX_PATTERN_LENGTH} characters", field=where)
        problem = too_broad(pattern)
        if problem:
            raise ScopeError(f"{pattern!r} is too broad: {problem}", field=where)


def check_scope(record: ExceptionRecord, *, known_rules: Collection[str]) -> None:
    """Refuse an exception that would silence too much (or nothing real): raises
    :class:`ScopeError` naming the field."""
    conditions = record.conditions
    if not conditions.rules:
        raise ScopeError("an exception names the rules it silences", field="rules")
    for index, rule in enumerate(conditions.rules):
        if _GLOB.search(rule):
            raise ScopeError("rules are exact rule ids, not patterns", field=f"rules[{index}]")
        if rule not in known_rules:
            raise ScopeError(f"unknown rule {rule!r}", field=f"rules[{index}]")
    if not conditions.executables:
        raise ScopeError(
            "an exception names the acting program (an exception without one would silence "
            "its rules for every program)",
            field="executables",
        )
    if record.scope is ExceptionScope.HOST and not record.host:
        raise ScopeError("a host-scoped exception names its host", field="host_id")
    if record.scope is ExceptionScope.FLEET and record.host:
        raise ScopeError("a fleet-wide exception names no host", field="host_id")
    for name in ("executables", "lineage", "paths", "endpoints", "users"):
        patterns: tuple[str, ...] = getattr(conditions, name)
        if name == "users":
            if any(not user.strip() or user.strip() == "*" for user in patterns):
                raise ScopeError("a user is a name or a uid, not a wildcard", field=name)
            continue
        _check_patterns(name, patterns)
