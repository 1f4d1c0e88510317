"""Counts over time for dashboards: alerts and incidents per bucket."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends

from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import ManagerContext, get_context, require
from provarmor.manager.routes.params import parse_time
from provarmor.model.time_units import seconds_to_ns

router = APIRouter(tags=["stats"])

Context = Annotated[ManagerContext, Depends(get_context)]
Reader = Annotated[Principal, Depends(require(Role.ANALYST))]


class Bucket(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


_SECONDS = {Bucket.MINUTE: 60, Bucket.HOUR: 3600, Bucket.DAY: 86_400}


@router.get("/stats/timeline")
def timeline(
    principal: Reader, context: Context, bucket: Bucket = Bucket.HOUR, since: str | None = None
) -> list[dict[str, int]]:
    """Alerts and incidents per bucket of event time (by their first event)."""
    rows = context.store.timeline(
        bucket_ns=seconds_to_ns(_SECONDS[bucket]), since=parse_time(since, field="since")
    )
    return [
        {"start_ns": row.start_ns, "alerts": row.alerts, "incidents": row.incidents} for row in rows
    ]
