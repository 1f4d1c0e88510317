"""Analyst feedback: mark an incident or an alert benign (which proposes scoped exceptions and,
for an incident, sets its status to ``false_positive``), review and edit the proposals,
confirm them, disable, enable or delete them, read their hit counts and audit trail, and
export the active ones as the YAML that ``provarmor detect --suppressions`` reads.

Roles: analysts mark benign, edit and withdraw proposals; confirming, and changing an
exception that applies or applied, needs the admin role. An exception silences detection,
on one host or the whole fleet, so a second person (holding admin) decides what an analyst
proposed: the four-eyes rule of a change to what the system detects.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from provarmor.detection.anomaly.detector import RULE_ID as ANOMALY_RULE_ID
from provarmor.detection.suppress import LineageTable, dump_suppressions
from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import ApiError, ManagerContext, get_context, require
from provarmor.manager.detectors import recall_from
from provarmor.manager.exceptions import (
    AuditEntry,
    ExceptionRecord,
    ExceptionScope,
    ExceptionState,
    ScopeError,
    check_scope,
    snapshot,
)
from provarmor.manager.proposals import Lineage, Origin, propose
from provarmor.manager.store import AlertRow, FindingsStore, StatusChange
from provarmor.model.alert import Alert
from provarmor.model.incident import IncidentStatus

router = APIRouter(tags=["exceptions"])

Context = Annotated[ManagerContext, Depends(get_context)]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
Patterns = list[Annotated[str, Field(max_length=1000)]]
_alert_decoder = msgspec.json.Decoder(Alert)


class BenignRequest(BaseModel):
    reason: Reason
    scope: ExceptionScope = ExceptionScope.HOST


class AlertBenignRequest(BenignRequest):
    host_id: str = Field(min_length=1)
    alert_id: str = Field(min_length=1)


class EditRequest(BaseModel):
    """New values for the fields given; ``reason`` says why (kept in the audit trail)."""

    reason: Reason
    scope: ExceptionScope | None = None
    host_id: str | None = None
    rules: Patterns | None = None
    executables: Patterns | None = None
    lineage: Patterns | None = None
    paths: Patterns | None = None
    endpoints: Patterns | None = None
    users: Patterns | None = None


class ChangeRequest(BaseModel):
    reason: str = Field(default="", max_length=2000)


def present(record: ExceptionRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "state": record.state.value,
        "scope": record.scope.value,
        "host_id": record.host,
        **record.conditions.to_dict(),
        "reason": record.reason,
        "source": record.source,
        "created_ns": record.created_ns,
        "created_by": record.created_by,
        "updated_ns": record.updated_ns,
        "hits": record.hits,
        "last_hit_ns": record.last_hit_ns,
    }


def _audit_entry(entry: AuditEntry) -> dict[str, object]:
    return {
        "exception_id": entry.exception_id,
        "ts_ns": entry.ts_ns,
        "author": entry.author,
        "action": entry.action,
        "reason": entry.reason,
        "state": entry.state,
        "snapshot": msgspec.json.decode(entry.snapshot) if entry.snapshot else {},
    }


def _entry(record: ExceptionRecord, *, author: str, action: str, reason: str) -> AuditEntry:
    return AuditEntry(
        exception_id=record.id,
        ts_ns=record.updated_ns,
        author=author,
        action=action,
        reason=reason,
        state=record.state.value,
        snapshot=snapshot(record),
    )


def _known_rules(context: ManagerContext) -> set[str]:
    return {rule.key for rule in context.kit.rules()} | {ANOMALY_RULE_ID}


def _checked(context: ManagerContext, record: ExceptionRecord) -> ExceptionRecord:
    try:
        check_scope(record, known_rules=_known_rules(context))
    except ScopeError as error:
        raise ApiError(400, str(error.args[0]), field=error.field) from None
    return record


def _lineage_reader(context: ManagerContext, host_id: str) -> Lineage:
    """A process's executable, then its ancestors', nearest first, as the host's graph has
    them (walked the way the suppression filter walks them)."""
    host = context.ingestor.host(host_id)
    table = LineageTable(recall=recall_from(host.store))

    def lineage_of(entity: str) -> list[str]:
        with host.lock:
            facts = table.facts(entity)
            return [facts.executable, *table.ancestors(entity)] if facts is not None else []

    return lineage_of


def _new_id() -> str:
    return f"exc-{secrets.token_hex(6)}"


def _propose(
    context: ManagerContext, alerts: list[AlertRow], *, origin: Origin
) -> list[ExceptionRecord]:
    decoded = [_alert_decoder.decode(row.json) for row in alerts]
    proposed = propose(
        decoded, lineage_of=_lineage_reader(context, origin.host), origin=origin, new_id=_new_id
    )
    if not proposed:
        raise ApiError(
            422,
            "the host's provenance graph does not know the acting processes of these alerts, "
            "so no scoped exception can be proposed",
            field="alert_ids",
        )
    stored: list[ExceptionRecord] = []
    for record in proposed:
        _checked(context, record)
        entry = _entry(record, author=origin.author, action="proposed", reason=origin.reason)
        stored.append(context.store.add_exception(record, audit=entry))
    return stored


@router.post("/incidents/{incident_id}/benign", status_code=201)
def incident_benign(
    incident_id: str, body: BenignRequest, principal: Analyst, context: Context
) -> dict[str, object]:
    """Mark an incident benign: its status becomes ``false_positive`` (kept in its history)
    and one exception per rule of its signals is proposed, scoped by the provenance of the
    acting processes (executable, lineage, objects) to its host or the fleet."""
    row = context.store.incident(incident_id)
    if row is None:
        raise ApiError(404, "unknown incident", field="incident_id")
    incident = msgspec.json.decode(row.json)
    alert_ids = [str(alert_id) for alert_id in incident.get("alert_ids", [])]
    now = time.time_ns()
    origin = Origin(
        scope=body.scope,
        host=row.host,
        reason=body.reason,
        source=f"incident:{incident_id}",
        author=principal.token_id,
        now_ns=now,
    )
    records = _propose(context, context.store.alerts_by_id(row.host, alert_ids), origin=origin)
    context.store.set_incident_status(
        StatusChange(
            incident_id=incident_id,
            ts_ns=now,
            author=principal.token_id,
            old="",
            new=IncidentStatus.FALSE_POSITIVE.value,
        )
    )
    return {
        "incident_id": incident_id,
        "status": IncidentStatus.FALSE_POSITIVE.value,
        "exceptions": [present(record) for record in records],
    }


@router.post("/alerts/benign", status_code=201)
def alert_benign(
    body: AlertBenignRequest, principal: Analyst, context: Context
) -> dict[str, object]:
    """Mark one alert benign: propose an exception scoped by its provenance."""
    rows = context.store.alerts_by_id(body.host_id, [body.alert_id])
    if not rows:
        raise ApiError(404, "unknown alert", field="alert_id")
    origin = Origin(
        scope=body.scope,
        host=body.host_id,
        reason=body.reason,
        source=f"alert:{body.host_id}/{body.alert_id}",
        author=principal.token_id,
        now_ns=time.time_ns(),
    )
    return {"exceptions": [present(record) for record in _propose(context, rows, origin=origin)]}


@router.get("/exceptions")
def list_exceptions(
    principal: Analyst, context: Context, state: ExceptionState | None = None
) -> list[dict[str, object]]:
    """Exceptions (all but deleted ones unless ``state`` asks), with their hit counts."""
    states = (state,) if state is not None else ()
    return [present(record) for record in context.store.exceptions(*states)]


@router.get("/exceptions/export")
def export_exceptions(principal: Analyst, context: Context, host: str = "") -> Response:
    """The active exceptions (those that apply to ``host`` when given) as the YAML that
    ``provarmor detect --suppressions`` and :func:`parse_suppressions` read."""
    return Response(exceptions_yaml(context.store, host=host), media_type="application/yaml")


def exceptions_yaml(store: FindingsStore, *, host: str = "") -> str:
    """The active exceptions (of ``host`` and the fleet, or all) in the suppressions YAML."""
    records = [
        record
        for record in store.exceptions(ExceptionState.ACTIVE)
        if not host or record.scope is ExceptionScope.FLEET or record.host == host
    ]
    return dump_suppressions(
        [record.to_suppression() for record in records],
        comment="ProvArmor exceptions confirmed on the manager (provarmor detect --suppressions)",
    )


@router.get("/exceptions/audit")
def audit_trail(
    principal: Analyst, context: Context, exception_id: str = ""
) -> list[dict[str, object]]:
    """Who changed which exception when and why, oldest first (append-only)."""
    return [_audit_entry(entry) for entry in context.store.exception_audit(exception_id)]


def _found(context: ManagerContext, exception_id: str) -> ExceptionRecord:
    record = context.store.exception(exception_id)
    if record is None or record.state is ExceptionState.DELETED:
        raise ApiError(404, "unknown exception", field="exception_id")
    return record


@router.get("/exceptions/{exception_id}")
def get_exception(exception_id: str, principal: Analyst, context: Context) -> dict[str, object]:
    record = context.store.exception(exception_id)
    if record is None:
        raise ApiError(404, "unknown exception", field="exception_id")
    audit = context.store.exception_audit(exception_id)
    return present(record) | {"audit": [_audit_entry(entry) for entry in audit]}


def _needs_admin(principal: Principal, record: ExceptionRecord, action: str) -> None:
    if record.state is not ExceptionState.PROPOSED and not principal.may(Role.ADMIN):
        raise ApiError(
            403,
            f"to {action} an exception that is {record.state.value} needs the admin role",
            field="Authorization",
        )


def _save(
    context: ManagerContext,
    record: ExceptionRecord,
    *,
    principal: Principal,
    action: str,
    reason: str,
) -> dict[str, object]:
    entry = _entry(record, author=principal.token_id, action=action, reason=reason)
    if not context.store.update_exception(record, audit=entry):
        raise ApiError(404, "unknown exception", field="exception_id")
    context.ingestor.reload_exceptions()
    return present(record)


@router.patch("/exceptions/{exception_id}")
def edit_exception(
    exception_id: str, body: EditRequest, principal: Analyst, context: Context
) -> dict[str, object]:
    """Change a proposal's scope or conditions (an analyst may), or an active or disabled
    exception's (an admin may: an active one applies from the next batch)."""
    record = _found(context, exception_id)
    _needs_admin(principal, record, "edit")
    given = body.model_dump(exclude_unset=True, exclude={"reason", "scope", "host_id"})
    conditions = dataclasses.replace(
        record.conditions,
        **{key: tuple(value.strip() for value in values) for key, values in given.items()},
    )
    scope = body.scope if body.scope is not None else record.scope
    host = body.host_id if body.host_id is not None else record.host
    if body.scope is ExceptionScope.FLEET and body.host_id is None:
        host = ""
    changed = dataclasses.replace(
        record, conditions=conditions, scope=scope, host=host, updated_ns=time.time_ns()
    )
    return _save(
        context,
        _checked(context, changed),
        principal=principal,
        action="edited",
        reason=body.reason,
    )


_MOVES = {
    "confirm": ({ExceptionState.PROPOSED}, ExceptionState.ACTIVE, "confirmed"),
    "disable": ({ExceptionState.ACTIVE}, ExceptionState.DISABLED, "disabled"),
    "enable": ({ExceptionState.DISABLED}, ExceptionState.ACTIVE, "enabled"),
}


def _move(
    context: ManagerContext, exception_id: str, *, move: str, principal: Principal, reason: str
) -> dict[str, object]:
    record = _found(context, exception_id)
    sources, target, action = _MOVES[move]
    if record.state not in sources:
        raise ApiError(
            409, f"cannot {move} an exception that is {record.state.value}", field="state"
        )
    changed = dataclasses.replace(record, state=target, updated_ns=time.time_ns())
    _checked(context, changed)
    return _save(context, changed, principal=principal, action=action, reason=reason)


@router.post("/exceptions/{exception_id}/confirm")
def confirm_exception(
    exception_id: str, body: ChangeRequest, principal: Admin, context: Context
) -> dict[str, object]:
    """Confirm a proposal: it applies to every host's next batch (no restart)."""
    return _move(context, exception_id, move="confirm", principal=principal, reason=body.reason)


@router.post("/exceptions/{exception_id}/disable")
def disable_exception(
    exception_id: str, body: ChangeRequest, principal: Admin, context: Context
) -> dict[str, object]:
    """Stop applying an exception (kept, with its counts; ``enable`` brings it back)."""
    return _move(context, exception_id, move="disable", principal=principal, reason=body.reason)


@router.post("/exceptions/{exception_id}/enable")
def enable_exception(
    exception_id: str, body: ChangeRequest, principal: Admin, context: Context
) -> dict[str, object]:
    return _move(context, exception_id, move="enable", principal=principal, reason=body.reason)


@router.delete("/exceptions/{exception_id}")
def delete_exception(
    exception_id: str, principal: Analyst, context: Context, reason: str = ""
) -> dict[str, object]:
    """Delete an exception (an analyst may withdraw a proposal; anything else needs admin).
    It stops applying at once; the record and its audit trail stay."""
    record = _found(context, exception_id)
    _needs_admin(principal, record, "delete")
    changed = dataclasses.replace(record, state=ExceptionState.DELETED, updated_ns=time.time_ns())
    return _save(context, changed, principal=principal, action="deleted", reason=reason)
