"""Time-respecting causality tracking: backward (what led here: root cause) and forward
(what came of it: impact) over any :class:`GraphStore`.

A path may continue through an edge only if that edge happened before the edge it leads to
(backward) or after it (forward). Each node keeps the best time bound it was reached with
(latest for backward, earliest for forward) and is expanded again only when a better bound
arrives, so the search ends on cyclic graphs.

A file re-created (``create``) starts a new version: backward from it, edges into the path
that ended before the re-creation are skipped (an ``rm`` of the old file is not a cause of
the new one).

Dependency explosion is kept down three ways, each counted in :attr:`TraceResult.hidden`:
well-known noise files (:mod:`provarmor.graph.noise`); leaf files (read, but never written
within the searched history: ``/usr/bin/curl`` as an exec source, config files); and remote
endpoints, which are external: the search records them but does not continue through them
unless ``follow_sockets`` is set.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field, replace
from enum import StrEnum

from provarmor.graph.noise import NoiseFilter
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.graph.store import GraphStore

FOREVER = 2**63 - 1


class Direction(StrEnum):
    BACKWARD = "backward"
    FORWARD = "forward"


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceLimits:
    max_depth: int = 50
    max_nodes: int = 2_000
    since: int = 0
    """Ignore edges that ended before this time (ns)."""
    until: int = FOREVER
    """Ignore edges that started after this time (ns)."""
    keep_leaves: bool = False
    follow_sockets: bool = False


@dataclass(slots=True)
class TraceResult:
    start: str
    direction: Direction
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[int, Edge] = field(default_factory=dict)
    hidden: Counter[str] = field(default_factory=Counter)
    truncated: str = ""
    """Why the search stopped early (node limit), empty when it completed."""
    start_event: str = ""


def trace_from_event(
    store: GraphStore,
    event_id: str,
    *,
    direction: Direction,
    limits: TraceLimits = TraceLimits(),
    noise: NoiseFilter = NoiseFilter(),  # noqa: B008
) -> TraceResult | None:
    """Trace from one event: backward, the causes of its subject as of the event's time
    (plus the event's own edge); forward, the effects of its object from that time on.
    ``None`` when the event is unknown."""
    found = store.event_edge(event_id)
    if found is None:
        return None
    edge, ts = found
    backward = direction is Direction.BACKWARD
    origin, start = (edge.src, edge.dst) if backward else (edge.dst, edge.src)
    inner = replace(limits, max_nodes=max(1, limits.max_nodes - 1))  # room for ``start``
    result = trace(store, origin, direction=direction, at=ts, limits=inner, noise=noise)
    start_node = store.node(start)
    if start_node is not None:
        result.nodes[start] = start_node
        result.edges[edge.id] = edge
        result.start = start
    result.start_event = event_id
    return result


def trace(  # noqa: PLR0913
    store: GraphStore,
    start: str,
    *,
    direction: Direction,
    at: int | None = None,
    limits: TraceLimits = TraceLimits(),
    noise: NoiseFilter = NoiseFilter(),  # noqa: B008
) -> TraceResult:
    """Trace from node ``start`` (as of time ``at``; default: all of its history)."""
    result = TraceResult(start=start, direction=direction)
    root = store.node(start)
    if root is None:
        return result
    result.nodes[start] = root
    backward = direction is Direction.BACKWARD
    bound0 = (FOREVER if backward else 0) if at is None else at
    best: dict[str, int] = {start: bound0}
    queue: deque[tuple[str, int, int]] = deque([(start, bound0, 0)])
    while queue:
        node_id, bound, depth = queue.popleft()
        if best.get(node_id) != bound:
            continue
        edges = store.in_edges(node_id) if backward else store.out_edges(node_id)
        floor = _version_start(edges, bound) if backward else 0
        for edge in edges:
            if edge.last_ts < floor:
                result.hidden["earlier_file_versions"] += 1
                continue
            step = _step(edge, bound, backward=backward, limits=limits)
            if step is None:
                continue
            other_id, next_bound = step
            if not _admit(store, result, other_id, next_bound, limits=limits, noise=noise):
                continue
            result.edges[edge.id] = edge
            if result.nodes[other_id].kind is NodeKind.SOCKET and not limits.follow_sockets:
                continue
            previous = best.get(other_id)
            if backward:
                better = previous is None or next_bound > previous
            else:
                better = previous is None or next_bound < previous
            if better and depth + 1 < limits.max_depth:
                best[other_id] = next_bound
                queue.append((other_id, next_bound, depth + 1))
            elif better:
                result.truncated = result.truncated or f"depth limit {limits.max_depth} reached"
    return result


def _version_start(in_edges: list[Edge], bound: int) -> int:
    """When the version of a file current at ``bound`` was created (0 if unknown): what
    happened to the path before a later re-creation did not flow into the new content."""
    return max(
        (edge.first_ts for edge in in_edges if edge.action == "create" and edge.first_ts <= bound),
        default=0,
    )


def _step(edge: Edge, bound: int, *, backward: bool, limits: TraceLimits) -> tuple[str, int] | None:
    """Where a time-respecting path continues through ``edge``, and with what time bound;
    ``None`` when the edge lies outside the window or on the wrong side of ``bound``."""
    if edge.last_ts < limits.since or edge.first_ts > limits.until:
        return None
    if backward:
        if edge.first_ts > bound:
            return None
        return edge.src, min(bound, edge.last_ts)
    if edge.last_ts < bound:
        return None
    return edge.dst, max(bound, edge.first_ts)


def _admit(  # noqa: PLR0913
    store: GraphStore,
    result: TraceResult,
    node_id: str,
    bound: int,
    *,
    limits: TraceLimits,
    noise: NoiseFilter,
) -> bool:
    """Whether the node joins the result (counting why not, when it does not)."""
    if node_id in result.nodes:
        return True
    node = store.node(node_id)
    if node is None:
        result.hidden["dangling"] += 1
        return False
    if noise.is_noise(node):
        result.hidden["noise"] += 1
        return False
    backward = result.direction is Direction.BACKWARD
    if backward and not limits.keep_leaves and _is_leaf_file(store, node, bound):
        result.hidden["leaf_files"] += 1
        return False
    if len(result.nodes) >= limits.max_nodes:
        result.truncated = f"node limit {limits.max_nodes} reached"
        return False
    result.nodes[node_id] = node
    return True


def _is_leaf_file(store: GraphStore, node: Node, bound: int) -> bool:
    """A file nothing wrote (within the history before ``bound``): a pure information source
    such as a program image or a config file."""
    if node.kind is not NodeKind.FILE:
        return False
    return not any(edge.first_ts <= bound for edge in store.in_edges(node.id))
