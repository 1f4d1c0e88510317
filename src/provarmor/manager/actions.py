"""Response actions asked for through the manager (``/api/v1/actions``) and the commands
that carry them to the agent of their host.

An action is proposed by an analyst, approved by an admin when its kind needs approval
(``ManagerSettings.approval_required``: isolate and lock_user by default), executed (which
queues a command for the host's agent) and, when its kind can be undone, undone (another
command). :class:`ActionRecord` is its current state; every step is also an append-only
:class:`ActionAuditEntry` (who, when, why, outcome) in the findings store.

A command is the action's request (a :class:`~provarmor.response.records.ActionRequest`)
with an expiry. It is handed to every poll of the host's agent until the agent reports its
result, so a command whose delivery or result was lost is delivered again; the agent runs
an action id once (it answers a redelivery with the result in its own audit trail). A
command never delivered before its expiry is expired (counted), not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import msgspec

from provarmor.response.records import ActionKind, ActionRequest, Outcome, Target

PRIMARY_KINDS = (
    ActionKind.KILL,
    ActionKind.SUSPEND,
    ActionKind.QUARANTINE,
    ActionKind.BLOCK,
    ActionKind.ISOLATE,
    ActionKind.LOCK_USER,
    ActionKind.REVERT_FILE,
)
"""What may be proposed; the other kinds (resume, restore, ...) run only as an undo."""


class ActionState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    QUEUED = "queued"
    """A command waits for the host's agent (``command`` says run or undo)."""
    DELIVERED = "delivered"
    """The agent has the command; its result has not come back yet."""
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    """The agent's allow-list or identity check stopped it (or it had expired there)."""
    EXPIRED = "expired"
    """Not delivered before its expiry: never run."""
    TIMED_OUT = "timed_out"
    """Delivered, but no result came within ``result_seconds``: whether it ran is unknown
    (a result that comes later is still recorded)."""
    UNDONE = "undone"


EXECUTED_STEP = "executed"
"""The audit step of an action queued to run (the per-host rate limit counts these)."""


class Execution(StrEnum):
    """What became of a request to execute an action under its host's rate limit."""

    QUEUED = "queued"
    CHANGED = "changed"
    """Another request moved the action first; nothing written."""
    RATE_LIMITED = "rate_limited"
    """The host had its limit of executions in the window; nothing written."""


class CommandKind(StrEnum):
    RUN = "run"
    UNDO = "undo"


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """What the agent receives: run (or undo) ``request`` unless ``expires_ns`` is past."""

    id: str
    """``request.id`` for a run, ``<request.id>-undo`` for an undo (as the responder names
    an undo in its trail)."""
    command: CommandKind
    request: ActionRequest
    expires_ns: int


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the agent reports for a command."""

    outcome: Outcome
    message: str = ""
    affected: tuple[str, ...] = ()
    undo_target: Target | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionRecord:
    id: str
    host: str
    incident_id: str
    kind: ActionKind
    request_json: str
    """The :class:`ActionRequest` as msgspec JSON."""
    state: ActionState
    needs_approval: bool
    proposed_by: str
    created_ns: int
    updated_ns: int
    approved_by: str = ""
    command: CommandKind = CommandKind.RUN
    expires_ns: int = 0
    """Of the queued command (0: none queued)."""
    deliveries: int = 0
    """How many times the current command was handed to the agent."""
    result_json: str = ""
    """The last :class:`CommandResult` reported, as JSON."""

    @property
    def request(self) -> ActionRequest:
        return msgspec.json.decode(self.request_json, type=ActionRequest)

    @property
    def result(self) -> CommandResult | None:
        if not self.result_json:
            return None
        return msgspec.json.decode(self.result_json, type=CommandResult)

    def command_id(self) -> str:
        return self.id if self.command is CommandKind.RUN else f"{self.id}-undo"

    def to_command(self) -> Command:
        return Command(
            id=self.command_id(),
            command=self.command,
            request=self.request,
            expires_ns=self.expires_ns,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionAuditEntry:
    """One step of an action: ``step`` is proposed, approved, executed (queued), delivered,
    result, expired, undo, undone; ``outcome`` is set on results."""

    action_id: str
    ts_ns: int
    author: str
    """``analyst:<token id>``, ``admin:<token id>``, ``agent:<agent id>`` or ``manager``."""
    step: str
    state: ActionState
    reason: str = ""
    outcome: str = ""
    message: str = ""


RESULT_STATES = {
    Outcome.DONE: ActionState.DONE,
    Outcome.FAILED: ActionState.FAILED,
    Outcome.REFUSED: ActionState.REFUSED,
    Outcome.DRY_RUN: ActionState.REFUSED,
}
"""The state a run's reported outcome leaves the action in (a command always runs in
enforce mode, so a dry run is not expected; it counts as not done)."""
