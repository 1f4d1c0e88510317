"""Hosts and their agents, with each agent's last sensor status and drop counters, and the
host's anomaly-model learning state (``learning``: phase, window and time left in event
time, events and processes seen, model version, when it was trained, its threshold and where
the threshold came from; ``null`` when the manager runs an operator's model)."""

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


def _host(host: HostRecord, context: ManagerContext) -> dict[str, object]:
    return {
        "id": host.id,
        "name": host.name,
        "events": host.events,
        "alerts": host.alerts,
        "incidents": host.incidents,
        "last_seen_ns": host.last_seen_ns,
        "agents": [_agent(agent) for agent in host.agents],
        "learning": context.ingestor.learning_status(host.id),
    }


@router.get("/hosts")
def list_hosts(principal: Reader, context: Context) -> list[dict[str, object]]:
    """Every host with an enrolled agent."""
    return [_host(host, context) for host in context.store.hosts()]


@router.get("/hosts/{host_id}")
def get_host(host_id: str, principal: Reader, context: Context) -> dict[str, object]:
    for host in context.store.hosts():
        if host.id == host_id:
            return _host(host, context)
    raise ApiError(404, "unknown host", field="host_id")
