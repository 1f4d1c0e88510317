"""Incidents: list, the full story, status changes and notes."""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import ApiError, ManagerContext, get_context, require
from provarmor.manager.routes.params import page
from provarmor.manager.store import IncidentQuery, IncidentRow, Note, StatusChange
from provarmor.model.incident import IncidentStatus

router = APIRouter(tags=["incidents"])

Context = Annotated[ManagerContext, Depends(get_context)]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]


class StatusUpdate(BaseModel):
    status: IncidentStatus


class NoteRequest(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


def _summary(row: IncidentRow) -> dict[str, object]:
    return {
        "id": row.id,
        "host_id": row.host,
        "title": row.title,
        "severity": row.severity,
        "score": row.score,
        "status": row.status,
        "first_ts": row.first_ts,
        "last_ts": row.last_ts,
        "updated_ts": row.updated_ts,
        "version": row.version,
    }


def _found(context: ManagerContext, incident_id: str) -> IncidentRow:
    row = context.store.incident(incident_id) or _merged_into(context, incident_id)
    if row is None:
        raise ApiError(404, "unknown incident", field="incident_id")
    return row


MERGE_SCAN_PAGE = 1000


def _merged_into(context: ManagerContext, incident_id: str) -> IncidentRow | None:
    """The incident that took ``incident_id`` in when two campaigns merged (its story lists
    the ids it absorbed), so a link to the older incident still leads to the story."""
    offset = 0
    while True:
        rows = context.store.incidents(IncidentQuery(page=page(MERGE_SCAN_PAGE, offset)))
        for row in rows:
            if incident_id in json.loads(row.json).get("merged_ids", ()):
                return row
        if len(rows) < MERGE_SCAN_PAGE:
            return None
        offset += MERGE_SCAN_PAGE


@router.get("/incidents")
def list_incidents(  # noqa: PLR0913 (one argument per query parameter)
    principal: Analyst,
    context: Context,
    status: IncidentStatus | None = None,
    severity: str = "",
    host: str = "",
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, object]]:
    query = IncidentQuery(
        host=host,
        status=status.value if status is not None else "",
        severity=severity,
        page=page(limit, offset),
    )
    return [_summary(row) for row in context.store.incidents(query)]


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: str, principal: Analyst, context: Context) -> dict[str, object]:
    """The latest version of the story (the model's Incident JSON), its analyst status,
    notes and status history. The id of an incident that was merged into another answers
    with that other incident, ``merged_from`` naming the id asked for."""
    row = _found(context, incident_id)
    incident: dict[str, object] = json.loads(row.json)
    if row.id != incident_id:
        incident["merged_from"] = incident_id  # the answer is the incident it merged into
    incident["status"] = row.status
    incident["notes"] = [
        {"ts_ns": n.ts_ns, "author": n.author, "text": n.text} for n in context.store.notes(row.id)
    ]
    incident["status_changes"] = [
        {"ts_ns": c.ts_ns, "author": c.author, "old": c.old, "new": c.new}
        for c in context.store.status_changes(row.id)
    ]
    return incident


@router.patch("/incidents/{incident_id}")
def set_status(
    incident_id: str, body: StatusUpdate, principal: Analyst, context: Context
) -> dict[str, object]:
    """Acknowledge or resolve (or reopen) an incident."""
    change = StatusChange(
        incident_id=incident_id,
        ts_ns=time.time_ns(),
        author=principal.token_id,
        old="",
        new=body.status.value,
    )
    if not context.store.set_incident_status(change):
        raise ApiError(404, "unknown incident", field="incident_id")
    return _summary(_found(context, incident_id))


@router.post("/incidents/{incident_id}/notes", status_code=201)
def add_note(
    incident_id: str, body: NoteRequest, principal: Analyst, context: Context
) -> dict[str, object]:
    note = Note(
        incident_id=incident_id, ts_ns=time.time_ns(), author=principal.token_id, text=body.text
    )
    if not context.store.add_note(note):
        raise ApiError(404, "unknown incident", field="incident_id")
    return {"incident_id": incident_id, "ts_ns": note.ts_ns, "author": note.author}
