"""Hosts and their agents, with each agent's last sensor status and drop counters."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends

from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import ApiError, ManagerContext, get_context, require
from provarmor.manager.store import AgentRecord, HostRecord

router = APIRouter(tags=["hosts"])

Context = Annotated[ManagerContext, Depends(get_context)]
Reader = Annotated[Principal, Depends(require(Role.ANALYST))]


def _agent(agent: AgentRecord) -> dict[str, object]:
    status: object = json.loads(agent.status_json) if agent.status_json else None
    return {
        "id": agent.id,
        "hostname": agent.hostname,
        "enrolled_ns": agent.enrolled_ns,
        "last_seen_ns": agent.last_seen_ns,
        "acked_sequence": agent.acked_sequence,
        "status": status,
        "status_ns": agent.status_ns,
    }


def _host(host: HostRecord) -> dict[str, object]:
    return {
        "id": host.id,
        "name": host.name,
        "events": host.events,
        "alerts": host.alerts,
        "incidents": host.incidents,
        "last_seen_ns": host.last_seen_ns,
        "agents": [_agent(agent) for agent in host.agents],
    }


@router.get("/hosts")
def list_hosts(principal: Reader, context: Context) -> list[dict[str, object]]:
    """Every host with an enrolled agent."""
    return [_host(host) for host in context.store.hosts()]


@router.get("/hosts/{host_id}")
def get_host(host_id: str, principal: Reader, context: Context) -> dict[str, object]:
    for host in context.store.hosts():
        if host.id == host_id:
            return _host(host)
    raise ApiError(404, "unknown host", field="host_id")
