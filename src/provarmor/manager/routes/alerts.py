"""Alerts raised on uploaded events."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends

from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import ManagerContext, get_context, require
from provarmor.manager.routes.params import page, parse_time
from provarmor.manager.store import AlertQuery

router = APIRouter(tags=["alerts"])

Context = Annotated[ManagerContext, Depends(get_context)]
Reader = Annotated[Principal, Depends(require(Role.ANALYST))]


class AlertOrder(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


@router.get("/alerts")
def list_alerts(  # noqa: PLR0913 (one argument per query parameter)
    principal: Reader,
    context: Context,
    host: str = "",
    level: str = "",
    since: str | None = None,
    until: str | None = None,
    order: AlertOrder = AlertOrder.NEWEST,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, object]]:
    """Alerts (the model's :class:`~provarmor.model.alert.Alert` JSON), latest first like
    incidents (``order=oldest`` for the other way)."""
    query = AlertQuery(
        host=host,
        level=level,
        since=parse_time(since, field="since"),
        until=parse_time(until, field="until"),
        newest_first=order is AlertOrder.NEWEST,
        page=page(limit, offset),
    )
    results: list[dict[str, object]] = []
    for row in context.store.alerts(query):
        alert = json.loads(row.json)
        alert["host_id"] = row.host
        results.append(alert)
    return results
