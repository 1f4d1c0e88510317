"""The graph store protocols, one per role, and the in-memory store.

:class:`GraphStore` applies graph deltas and answers node and edge lookups (what analysis
and investigation need); :class:`PersistentGraphStore` is a store that outlives the process
(what ingest, the agent and the manager write to). The in-memory implementation here serves
tests and short-lived analyses; the SQL stores live in :mod:`provarmor.storage`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import msgspec

from provarmor.graph.builder import GraphDelta
from provarmor.graph.records import Edge, Node


@dataclass(frozen=True, slots=True)
class GraphStats:
    nodes_by_kind: dict[str, int]
    edges_by_action: dict[str, int]
    events_indexed: int
    gaps: int
    first_ts: int
    last_ts: int


@dataclass(frozen=True, slots=True)
class GraphPrune:
    """One step of retention on a host's graph (:meth:`PersistentGraphStore.prune`)."""

    edges: int
    events: int
    """Rows of the event index deleted."""
    nodes: tuple[str, ...]
    """Ids of the nodes deleted (a graph builder that holds them must forget them)."""
    gaps: int
    done: bool
    """Nothing older than the cutoff is left to delete (but what is kept)."""


@dataclass(slots=True)
class PruneCursor:
    """Where the steps of one retention pass over a graph have got to (the edges and nodes
    it keeps are not looked at twice)."""

    edge: tuple[int, int] = (-(2**63), -(2**63))
    """``(last_ts, id)`` of the last edge looked at."""
    node: tuple[int, int] = (-(2**63), -(2**63))
    """``(first_ts, key)`` of the last node looked at."""
    edges_done: bool = False
    nodes_done: bool = False


class GraphStore(Protocol):
    def apply(self, delta: GraphDelta, *, meta: dict[str, str] | None = None) -> None:
        """Write one batch of changes (nodes upserted, edges inserted or updated) in one
        transaction, with ``meta`` entries (a consumer's input position) when the store
        keeps them: all of it is written, or (raising) none of it."""

    def node(self, node_id: str) -> Node | None: ...

    def nodes_of(self, node_ids: Iterable[str]) -> dict[str, Node]:
        """The stored nodes among ``node_ids`` (one query against SQL, where :meth:`node`
        costs one per node)."""

    def in_edges(self, node_id: str) -> list[Edge]: ...

    def out_edges(self, node_id: str) -> list[Edge]: ...

    def event_edge(self, event_id: str) -> tuple[Edge, int] | None:
        """The edge an event made or was merged into, and the event's own timestamp."""

    def find_nodes(self, text: str, *, limit: int = 20) -> list[Node]:
        """The node whose id equals ``text``; else the nodes whose path equals it (a file
        named exactly); else those whose label, path or command line contains it."""

    def stats(self) -> GraphStats: ...


@runtime_checkable
class PersistentGraphStore(GraphStore, Protocol):
    """A store that holds earlier batches (a SQLite file, a PostgreSQL schema): new batches
    continue its edge ids, a consumer's input position is kept with the batch it belongs to,
    and ingested files are recorded so that a second ingest is skipped."""

    def next_edge_id(self) -> int: ...

    def meta(self, key: str) -> str | None:
        """A value written with :meth:`apply`'s ``meta`` (``None``: never written)."""

    def ingested(self, digest: str) -> tuple[str, int] | None:
        """``(source, events)`` if a file with this digest was ingested before."""

    def record_ingest(  # noqa: PLR0913
        self, *, digest: str, source: str, format: str, events: int, rejected: int, finished_at: int
    ) -> None: ...

    def prune(
        self, before_ts: int, *, keep: frozenset[str], rows: int, cursor: PruneCursor
    ) -> GraphPrune:
        """Delete, in one transaction, up to ``rows`` edges whose last event is older than
        ``before_ts`` (unless both ends are in ``keep``) and as many event index entries older
        than it; once none is left, up to ``rows`` nodes older than it that no edge refers to
        any more (unless in ``keep``). Repeat (with the same ``cursor``) until
        :attr:`GraphPrune.done`."""

    def size_cutoff(self, max_bytes: int) -> int:
        """The time before which edges must go for the store to fit ``max_bytes`` (an
        estimate from the bytes per edge); 0 when it fits."""

    def settle(self, max_bytes: int) -> None:
        """After a pass: the store's measure, when still over ``max_bytes`` (PostgreSQL keeps
        its files' size and reuses the space), is the floor later :meth:`size_cutoff` calls
        start from, so they cut only what grows past it."""

    def vacuum(self) -> None:
        """Make deleted rows' space reusable now; safe beside writes to the store (it does
        not use the store's connection)."""

    def reclaim(self, *, pages: int) -> int:
        """Return up to ``pages`` freed pages to the file system; the bytes the store shrank
        by (0: nothing more to give back)."""

    def close(self) -> None: ...


def merge_node(old: Node, new: Node) -> Node:
    """The union of two views of one node: widest time span, newest labels."""
    new.first_ts = min(old.first_ts, new.first_ts)
    new.last_ts = max(old.last_ts, new.last_ts)
    for name in ("label", "executable", "command_line", "user", "parent", "path", "ip"):
        if not getattr(new, name):
            setattr(new, name, getattr(old, name))
    new.pid = new.pid or old.pid
    new.port = new.port or old.port
    new.exited = new.exited or old.exited
    return new


class MemoryGraphStore:
    """A GraphStore in plain dicts (tests, one-off analyses of small files)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: dict[int, Edge] = {}
        self._in: defaultdict[str, list[int]] = defaultdict(list)
        self._out: defaultdict[str, list[int]] = defaultdict(list)
        self._event_edge: dict[str, tuple[int, int]] = {}
        self.gaps: list[tuple[str, int, int]] = []

    def apply(self, delta: GraphDelta, *, meta: dict[str, str] | None = None) -> None:
        del meta  # positions matter to persistent stores only
        for node in delta.nodes:
            old = self.nodes.get(node.id)
            copy = msgspec.structs.replace(node)
            self.nodes[node.id] = merge_node(old, copy) if old is not None else copy
        for edge in delta.new_edges:
            self.edges[edge.id] = _copy_edge(edge)
            self._out[edge.src].append(edge.id)
            self._in[edge.dst].append(edge.id)
        for edge in delta.updated_edges:
            self.edges[edge.id] = _copy_edge(edge)
        for event_id, edge_id, ts in delta.event_edges:
            self._event_edge[event_id] = (edge_id, ts)
        self.gaps.extend(delta.gaps)

    def node(self, node_id: str) -> Node | None:
        return self.nodes.get(node_id)

    def nodes_of(self, node_ids: Iterable[str]) -> dict[str, Node]:
        nodes = self.nodes
        return {node_id: nodes[node_id] for node_id in node_ids if node_id in nodes}

    def in_edges(self, node_id: str) -> list[Edge]:
        return [self.edges[i] for i in self._in.get(node_id, ())]

    def out_edges(self, node_id: str) -> list[Edge]:
        return [self.edges[i] for i in self._out.get(node_id, ())]

    def event_edge(self, event_id: str) -> tuple[Edge, int] | None:
        found = self._event_edge.get(event_id)
        if found is None:
            return None
        return self.edges[found[0]], found[1]

    def find_nodes(self, text: str, *, limit: int = 20) -> list[Node]:
        if text in self.nodes:
            return [self.nodes[text]]
        exact = sorted(
            (node for node in self.nodes.values() if node.path == text), key=lambda n: n.first_ts
        )
        if exact:
            return exact[:limit]
        found = [
            node
            for node in self.nodes.values()
            if text in node.label or text in node.command_line or text in node.path
        ]
        return found[:limit]

    def stats(self) -> GraphStats:
        kinds: dict[str, int] = {}
        for node in self.nodes.values():
            kinds[node.kind] = kinds.get(node.kind, 0) + 1
        actions: dict[str, int] = {}
        times = [edge.first_ts for edge in self.edges.values()] + [
            edge.last_ts for edge in self.edges.values()
        ]
        for edge in self.edges.values():
            actions[edge.action] = actions.get(edge.action, 0) + edge.count
        return GraphStats(
            nodes_by_kind=kinds,
            edges_by_action=actions,
            events_indexed=len(self._event_edge),
            gaps=len(self.gaps),
            first_ts=min(times, default=0),
            last_ts=max(times, default=0),
        )


def _copy_edge(edge: Edge) -> Edge:
    return msgspec.structs.replace(edge)
