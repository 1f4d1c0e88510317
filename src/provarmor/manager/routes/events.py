"""Event search over uploaded events."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import ManagerContext, get_context, require
from provarmor.manager.routes.params import page, parse_time
from provarmor.manager.store import EventQuery, EventRow

router = APIRouter(tags=["events"])

Context = Annotated[ManagerContext, Depends(get_context)]
Reader = Annotated[Principal, Depends(require(Role.ANALYST))]


def _event(row: EventRow) -> dict[str, object]:
    return {
        "host": row.host,
        "timestamp": row.ts,
        "event_id": row.event_id,
        "action": row.action,
        "process": row.process,
        "executable": row.executable,
        "command_line": row.command_line,
        "file_path": row.file_path,
        "remote": row.remote,
        "event": json.loads(row.json) if row.json else None,
    }


@router.get("/events")
def search_events(  # noqa: PLR0913 (one argument per query parameter)
    principal: Reader,
    context: Context,
    host: str = "",
    process: Annotated[str, Query(description="Process entity id.")] = "",
    q: Annotated[
        str, Query(max_length=200, description="Text in executable, command line, path, endpoint.")
    ] = "",
    since: Annotated[str | None, Query(description="ns since the epoch, or ISO-8601.")] = None,
    until: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, object]]:
    query = EventQuery(
        host=host,
        process=process,
        text=q,
        since=parse_time(since, field="since"),
        until=parse_time(until, field="until"),
        page=page(limit, offset),
    )
    return [_event(row) for row in context.store.search_events(query)]
