"""Typed records of response: what an action targets, the request to run it, and its result.

Records are immutable msgspec structs. A target is one of a tagged union
(:data:`Target`), so a stored request names its kind of target (``{"type": "process", ...}``)
and is decoded back into the same type. Every action returns an :class:`ActionResult`;
actions report failure in the result and never raise for a state of the host (a process
already gone, a file moved meanwhile).
"""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct


class ActionKind(StrEnum):
    KILL = "kill"
    SUSPEND = "suspend"
    RESUME = "resume"
    QUARANTINE = "quarantine"
    RESTORE = "restore"
    BLOCK = "block"
    UNBLOCK = "unblock"
    ISOLATE = "isolate"
    RELEASE = "release"
    LOCK_USER = "lock_user"
    UNLOCK_USER = "unlock_user"
    REVERT_FILE = "revert_file"
    UNREVERT_FILE = "unrevert_file"


class Outcome(StrEnum):
    DONE = "done"
    """The action ran and the host is in the state it asked for."""
    DRY_RUN = "dry_run"
    """Policy in dry-run mode: recorded what would have been done; nothing was touched."""
    REFUSED = "refused"
    """The allow-list, a rate limit or a failed identity check stopped it; nothing touched."""
    FAILED = "failed"
    """It was tried and did not (fully) work; ``message`` says what is left."""


class ProcessTarget(Struct, frozen=True, kw_only=True, tag="process"):
    """A process (and its tree) by entity id. ``pid`` is where to look first; the action
    acts only if ``/proc/PID`` has the same entity id (pid and start time), so a reused
    pid is never hit."""

    entity_id: str
    pid: int
    executable: str = ""


class FileTarget(Struct, frozen=True, kw_only=True, tag="file"):
    path: str


class QuarantinedTarget(Struct, frozen=True, kw_only=True, tag="quarantined"):
    """A file in the quarantine store, by its quarantine id (what ``restore`` takes)."""

    quarantine_id: str


class PersistenceTarget(Struct, frozen=True, kw_only=True, tag="persistence_file"):
    """A persistence file (a shell start-up file, a crontab ...) to take back to its
    baseline; ``written_ns``: when the attack first wrote it (the baseline used is the
    newest version older than that; 0: the newest)."""

    path: str
    written_ns: int = 0


class Hunk(Struct, frozen=True, kw_only=True):
    """Lines ``revert_file`` took out: at line ``line`` (0-based) of the reverted file,
    ``lines`` (bytes, line ends included) stood where the ``replaced`` lines from there on
    now stand (0: they were added)."""

    line: int
    replaced: int
    lines: bytes


class RevertedTarget(Struct, frozen=True, kw_only=True, tag="reverted"):
    """What ``unrevert_file`` takes: the hunks ``revert_file`` took out of ``path``, and the
    file's sha256 after the revert and before it (the undo checks both)."""

    path: str
    hunks: tuple[Hunk, ...]
    reverted_sha256: str
    original_sha256: str


class NetworkTarget(Struct, frozen=True, kw_only=True, tag="network"):
    """A remote address; ``port`` 0 means every port of it."""

    ip: str
    port: int = 0


class HostTarget(Struct, frozen=True, kw_only=True, tag="host"):
    """The agent's own host. ``release_after_seconds`` > 0: isolation ends by itself."""

    release_after_seconds: float = 0.0


class UserTarget(Struct, frozen=True, kw_only=True, tag="user"):
    name: str
    """An account name, or a numeric uid as text (as incidents carry users)."""


Target = (
    ProcessTarget
    | FileTarget
    | QuarantinedTarget
    | PersistenceTarget
    | RevertedTarget
    | NetworkTarget
    | HostTarget
    | UserTarget
)


def describe_target(target: Target) -> str:
    """A short human label: ``pid 4242 (/tmp/implant)``, ``10.0.0.5:4444``, ``user bob``."""
    match target:
        case ProcessTarget():
            return f"pid {target.pid} ({target.executable or target.entity_id})"
        case FileTarget():
            return target.path
        case QuarantinedTarget():
            return f"quarantined {target.quarantine_id}"
        case PersistenceTarget():
            return target.path
        case RevertedTarget():
            return f"{target.path} ({len(target.hunks)} reverted hunk(s))"
        case NetworkTarget():
            return f"{target.ip}:{target.port}" if target.port else target.ip
        case HostTarget():
            return "this host"
        case UserTarget():
            return f"user {target.name}"


class ActionRequest(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One action to take, and why."""

    id: str
    kind: ActionKind
    target: Target
    requested_by: str
    """Who asked: ``policy:<rule name>`` or a person's name."""
    reason: str = ""
    incident_id: str = ""
    host_id: str = ""
    explicit: bool = False
    """Named by a person: the package-manager guard gives way (pid 1, the agent, the
    manager and sshd's listener never do)."""


class ActionResult(Struct, frozen=True, kw_only=True, omit_defaults=True):
    outcome: Outcome
    message: str
    affected: tuple[str, ...] = ()
    """What was touched: pids, paths, set elements, rules."""
    undo_target: Target | None = None
    """What the undo action takes (a quarantine id for ``restore``); ``None``: the same
    target as the action."""
