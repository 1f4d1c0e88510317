"""Provenance graph queries on a host's graph: one node with its edges, and backward or
forward tracking from any node (:func:`provarmor.graph.trace.trace`)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Query

from provarmor.graph.render import to_json
from provarmor.graph.trace import Direction, TraceLimits, trace
from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import ApiError, ManagerContext, get_context, require
from provarmor.manager.ingest import HostAnalysis
from provarmor.manager.routes.params import parse_time

router = APIRouter(tags=["graph"])

Context = Annotated[ManagerContext, Depends(get_context)]
Reader = Annotated[Principal, Depends(require(Role.ANALYST))]
MAX_EDGES = 500
MAX_TRACE_NODES = 5_000


def _host(context: ManagerContext, host_id: str) -> HostAnalysis:
    if not host_id:
        raise ApiError(400, "host is required", field="host")
    if not any(host.id == host_id for host in context.store.hosts()):
        raise ApiError(404, "unknown host", field="host")
    return context.ingestor.host(host_id)


@router.get("/graph/nodes/{node_id:path}")
def get_node(
    node_id: str, principal: Reader, context: Context, host: str = ""
) -> dict[str, object]:
    """A node with its incoming and outgoing edges (up to 500 each)."""
    found = _host(context, host)
    with found.lock:
        node = found.store.node(node_id)
        if node is None:
            raise ApiError(404, "unknown node", field="node_id")
        incoming = found.store.in_edges(node_id)
        outgoing = found.store.out_edges(node_id)
    return {
        "node": msgspec.to_builtins(node),
        "in_edges": [msgspec.to_builtins(edge) for edge in incoming[:MAX_EDGES]],
        "out_edges": [msgspec.to_builtins(edge) for edge in outgoing[:MAX_EDGES]],
        "in_total": len(incoming),
        "out_total": len(outgoing),
    }


@router.get("/graph/trace")
def trace_node(  # noqa: PLR0913 (one argument per query parameter)
    principal: Reader,
    context: Context,
    host: str = "",
    node: Annotated[str, Query(min_length=1)] = "",
    direction: Direction = Direction.BACKWARD,
    at: str | None = None,
    max_nodes: Annotated[int, Query(ge=1, le=MAX_TRACE_NODES)] = 500,
) -> dict[str, object]:
    """Backward (root cause) or forward (impact) tracking from ``node`` as of ``at``."""
    found = _host(context, host)
    moment = parse_time(at, field="at") or None
    with found.lock:
        if found.store.node(node) is None:
            raise ApiError(404, "unknown node", field="node")
        result = trace(
            found.store,
            node,
            direction=direction,
            at=moment,
            limits=TraceLimits(max_nodes=max_nodes),
        )
    return to_json(result)
