"""Response actions: propose, approve, execute, undo, list (with every step's audit).

Analysts propose and execute actions; a kind listed in ``approval_required`` (isolate and
lock_user by default) runs only after an admin approved it. Executing or undoing queues a
command for the agent of the action's host (see :mod:`provarmor.manager.routes.commands`),
which runs it through its responder, allow-list included, and reports the result.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from provarmor.manager.actions import (
    EXECUTED_STEP,
    PRIMARY_KINDS,
    ActionAuditEntry,
    ActionRecord,
    ActionState,
    CommandKind,
)
from provarmor.manager.auth import Principal, Role
from provarmor.manager.command_queue import send_on_bus, sweep
from provarmor.manager.deps import ApiError, ManagerContext, get_context, require
from provarmor.manager.rate_limit import rate_limited
from provarmor.manager.routes.params import page
from provarmor.manager.store import ActionQuery
from provarmor.model.time_units import seconds_to_ns
from provarmor.response.records import ActionKind, ActionRequest, Target
from provarmor.response.registry import BY_KIND

router = APIRouter(tags=["actions"])

Context = Annotated[ManagerContext, Depends(get_context)]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

MAX_COMMAND_SECONDS = 7 * 86_400


class Proposal(BaseModel):
    kind: ActionKind
    target: dict[str, object] = Field(
        description='A typed target: {"type": "process", "entity_id": ..., "pid": ...}, '
        '{"type": "file", "path": ...}, {"type": "network", "ip": ..., "port": ...}, '
        '{"type": "host"}, {"type": "user", "name": ...}'
    )
    host_id: str = Field(default="", max_length=200)
    """The host to act on; empty: the incident's host."""
    incident_id: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=2000)
    explicit: bool = True
    """Named by a person: the package-manager guard of the allow-list gives way."""


class Step(BaseModel):
    reason: str = Field(default="", max_length=2000)
    expires_seconds: int = Field(default=0, ge=0, le=MAX_COMMAND_SECONDS)
    """For execute and undo: how long the command waits for the agent (0: the manager's
    ``command_seconds``)."""


def author(principal: Principal) -> str:
    return f"{principal.role.value}:{principal.token_id}"


def view(record: ActionRecord) -> dict[str, object]:
    result = record.result
    return {
        "id": record.id,
        "host_id": record.host,
        "incident_id": record.incident_id,
        "kind": record.kind.value,
        "target": msgspec.to_builtins(record.request.target),
        "reason": record.request.reason,
        "state": record.state.value,
        "needs_approval": record.needs_approval,
        "proposed_by": record.proposed_by,
        "approved_by": record.approved_by,
        "created_ns": record.created_ns,
        "updated_ns": record.updated_ns,
        "command": record.command.value,
        "expires_ns": record.expires_ns,
        "deliveries": record.deliveries,
        "result": None if result is None else msgspec.to_builtins(result),
        "undoable": BY_KIND[record.kind].undo is not None,
    }


def _target(body: Proposal) -> Target:
    try:
        target: Target = msgspec.convert(body.target, type=Target)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"not a target: {exc}", field="target") from None
    wanted = BY_KIND[body.kind].target_type
    if not isinstance(target, wanted):
        raise ApiError(
            400, f"{body.kind.value} takes a {wanted.__name__}, not {target}", field="target"
        )
    return target


def _host(context: ManagerContext, body: Proposal) -> str:
    if body.incident_id:
        incident = context.store.incident(body.incident_id)
        if incident is None:
            raise ApiError(404, "unknown incident", field="incident_id")
        if body.host_id and body.host_id != incident.host:
            raise ApiError(400, "the incident is on another host", field="host_id")
        return incident.host
    if not body.host_id:
        raise ApiError(400, "name a host_id or an incident_id", field="host_id")
    if not any(host.id == body.host_id for host in context.store.hosts()):
        raise ApiError(404, "no agent enrolled for this host", field="host_id")
    return body.host_id


@router.post("/actions", status_code=201)
def propose(body: Proposal, principal: Analyst, context: Context) -> dict[str, object]:
    """Propose an action; it runs after ``execute`` (and an admin's ``approve`` for the
    kinds that need it)."""
    if body.kind not in PRIMARY_KINDS:
        raise ApiError(
            400,
            f"{body.kind.value} is not proposed: it runs as the undo of an action",
            field="kind",
        )
    target = _target(body)
    host = _host(context, body)
    now = time.time_ns()
    action_id = f"act-{secrets.token_hex(8)}"
    who = author(principal)
    request = ActionRequest(
        id=action_id,
        kind=body.kind,
        target=target,
        requested_by=who,
        reason=body.reason,
        incident_id=body.incident_id,
        host_id=host,
        explicit=body.explicit,
    )
    record = ActionRecord(
        id=action_id,
        host=host,
        incident_id=body.incident_id,
        kind=body.kind,
        request_json=msgspec.json.encode(request).decode(),
        state=ActionState.PROPOSED,
        needs_approval=body.kind.value in context.settings.approval_required,
        proposed_by=who,
        created_ns=now,
        updated_ns=now,
    )
    entry = ActionAuditEntry(
        action_id=action_id,
        ts_ns=now,
        author=who,
        step="proposed",
        state=ActionState.PROPOSED,
        reason=body.reason,
    )
    if not context.store.add_action(record, audit=entry):  # pragma: no cover (random id)
        raise ApiError(409, "action id taken; propose again", field="id")
    return view(record)


@router.get("/actions")
def list_actions(  # noqa: PLR0913 (one argument per query parameter)
    principal: Analyst,
    context: Context,
    host_id: str = "",
    incident_id: str = "",
    state: ActionState | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, object]:
    """Actions, oldest first: of one host, of one incident, in one state."""
    sweep(context, time.time_ns())
    query = ActionQuery(
        host=host_id,
        incident_id=incident_id,
        states=(state,) if state is not None else (),
        page=page(limit, offset),
    )
    records = context.store.actions(query)
    return {"actions": [view(record) for record in records]}


def _found(context: ManagerContext, action_id: str) -> ActionRecord:
    record = context.store.action(action_id)
    if record is None:
        raise ApiError(404, "unknown action", field="action_id")
    return record


@router.get("/actions/{action_id}")
def get_action(action_id: str, principal: Analyst, context: Context) -> dict[str, object]:
    """One action and its audit trail (proposal, approval, execution, delivery, result,
    undo)."""
    sweep(context, time.time_ns())
    record = _found(context, action_id)
    audit = [
        {
            "ts_ns": entry.ts_ns,
            "author": entry.author,
            "step": entry.step,
            "state": entry.state.value,
            "reason": entry.reason,
            "outcome": entry.outcome,
            "message": entry.message,
        }
        for entry in context.store.action_audit(action_id)
    ]
    return view(record) | {"audit": audit}


def _entry(
    moved: ActionRecord, *, step: str, who: str, reason: str, message: str = ""
) -> ActionAuditEntry:
    return ActionAuditEntry(
        action_id=moved.id,
        ts_ns=moved.updated_ns,
        author=who,
        step=step,
        state=moved.state,
        reason=reason,
        message=message,
    )


def _move(
    context: ManagerContext, was: ActionState, moved: ActionRecord, entry: ActionAuditEntry
) -> dict[str, object]:
    """Write the action's move (from state ``was``) with its audit entry; 409 when another
    request moved it first."""
    if not context.store.update_action(moved, was=was, audit=entry):
        raise ApiError(409, "the action changed meanwhile; read it again", field="action_id")
    return view(moved)


@router.post("/actions/{action_id}/approve")
def approve(action_id: str, body: Step, principal: Admin, context: Context) -> dict[str, object]:
    """An admin's approval of an action whose kind needs it."""
    record = _found(context, action_id)
    if not record.needs_approval:
        raise ApiError(409, f"{record.kind.value} needs no approval", field="action_id")
    if record.state is not ActionState.PROPOSED:
        raise ApiError(409, f"the action is {record.state.value}", field="action_id")
    who = author(principal)
    moved = replace(record, state=ActionState.APPROVED, approved_by=who, updated_ns=time.time_ns())
    entry = _entry(moved, step="approved", who=who, reason=body.reason)
    return _move(context, record.state, moved, entry)


def _queue(
    context: ManagerContext, record: ActionRecord, body: Step, command: CommandKind
) -> ActionRecord:
    now = time.time_ns()
    seconds = body.expires_seconds or context.settings.command_seconds
    return replace(
        record,
        state=ActionState.QUEUED,
        command=command,
        expires_ns=now + seconds_to_ns(seconds),
        deliveries=0,
        updated_ns=now,
    )


@router.post("/actions/{action_id}/execute")
def execute(action_id: str, body: Step, principal: Analyst, context: Context) -> dict[str, object]:
    """Queue the action for its host's agent (approved first when its kind needs it)."""
    record = _found(context, action_id)
    if record.state is ActionState.PROPOSED and record.needs_approval:
        raise ApiError(
            409, f"{record.kind.value} needs an admin's approval first", field="action_id"
        )
    if record.state not in (ActionState.PROPOSED, ActionState.APPROVED):
        raise ApiError(409, f"the action is {record.state.value}", field="action_id")
    moved = _queue(context, record, body, CommandKind.RUN)
    limited = rate_limited(context.store, context.rate_limit, record.host, now_ns=moved.updated_ns)
    if limited is not None:
        refused = _entry(record, step="execute refused", who=author(principal), reason=body.reason)
        context.store.add_action_audit(replace(refused, ts_ns=moved.updated_ns, message=limited))
        context.metrics.commands.labels(event="rate_limited").inc()
        raise ApiError(429, limited, field="action_id")
    entry = _entry(moved, step=EXECUTED_STEP, who=author(principal), reason=body.reason)
    return _queued(context, record.state, moved, entry)


def _queued(
    context: ManagerContext, was: ActionState, moved: ActionRecord, entry: ActionAuditEntry
) -> dict[str, object]:
    """Write the queued command; in cluster mode, send it on the bus."""
    answer = _move(context, was, moved, entry)
    context.metrics.commands.labels(event="queued").inc()
    if context.bus_commands is not None:
        send_on_bus(context, moved)
    return answer


@router.post("/actions/{action_id}/undo")
def undo(action_id: str, body: Step, principal: Analyst, context: Context) -> dict[str, object]:
    """Queue the undo of a done action (resume, restore, unblock, release, unlock_user)."""
    record = _found(context, action_id)
    undo_kind = BY_KIND[record.kind].undo
    if undo_kind is None:
        raise ApiError(409, f"{record.kind.value} cannot be undone", field="action_id")
    if record.state is not ActionState.DONE:
        raise ApiError(409, f"the action is {record.state.value}, not done", field="action_id")
    moved = _queue(context, record, body, CommandKind.UNDO)
    step = f"undo ({undo_kind.value})"
    entry = _entry(moved, step=step, who=author(principal), reason=body.reason)
    return _queued(context, record.state, moved, entry)
