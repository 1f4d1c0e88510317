"""A persistent graph store seen through a read cache, for the analysis that writes it.

The incident engine reads the same nodes and edge lists again and again: every new version
of an incident rebuilds its story from the graph (entry points, forward expansion, sensitive
reads), and a host's incident is rebuilt as its attack goes on. Against SQL each read is a
query. :class:`ReadCachedStore` keeps :meth:`node`, :meth:`in_edges` and :meth:`out_edges`
answers and drops, after each committed :meth:`apply`, the nodes the delta wrote and the edge
lists of its edges' endpoints (a delta that raised changed nothing). That is exact only while
every write to the store goes through this object: the analysis that owns the store (one
writer per host graph). Readers elsewhere (the manager's API, another process) use the store
itself. Both caches are bounded; a full one is cleared (counted in :attr:`resets`).
"""

from __future__ import annotations

from provarmor.graph.builder import GraphDelta
from provarmor.graph.records import Edge, Node
from provarmor.graph.store import GraphStats, PersistentGraphStore

MAX_NODES = 20_000
"""Nodes the cache holds at most."""
MAX_EDGES = 100_000
"""Edges the cached in/out lists hold at most, in all."""


class ReadCachedStore:
    """``store`` with cached reads; every write must go through :meth:`apply`."""

    def __init__(
        self, store: PersistentGraphStore, *, max_nodes: int = MAX_NODES, max_edges: int = MAX_EDGES
    ) -> None:
        self.store = store
        self.max_nodes = max_nodes
        self.max_edges = max_edges
        self.resets = 0
        """Times a full cache was cleared (each costs later reads only)."""
        self._nodes: dict[str, Node | None] = {}
        self._lists: dict[tuple[bool, str], list[Edge]] = {}
        """``(incoming?, node id)`` -> its edges."""
        self._edges = 0

    def apply(self, delta: GraphDelta, *, meta: dict[str, str] | None = None) -> None:
        self.store.apply(delta, meta=meta)
        for node in delta.nodes:
            self._nodes.pop(node.id, None)
        for edge in (*delta.new_edges, *delta.updated_edges):
            for key in ((True, edge.dst), (False, edge.src)):
                dropped = self._lists.pop(key, None)
                if dropped is not None:
                    self._edges -= len(dropped)

    def node(self, node_id: str) -> Node | None:
        try:
            return self._nodes[node_id]
        except KeyError:
            pass
        found = self.store.node(node_id)
        if len(self._nodes) >= self.max_nodes:
            self._clear()
        self._nodes[node_id] = found
        return found

    def in_edges(self, node_id: str) -> list[Edge]:
        return self._edge_list(True, node_id)

    def out_edges(self, node_id: str) -> list[Edge]:
        return self._edge_list(False, node_id)

    def _edge_list(self, incoming: bool, node_id: str) -> list[Edge]:
        key = (incoming, node_id)
        cached = self._lists.get(key)
        if cached is None:
            cached = self.store.in_edges(node_id) if incoming else self.store.out_edges(node_id)
            if self._edges + len(cached) > self.max_edges:
                self._clear()
            if len(cached) <= self.max_edges:
                self._lists[key] = cached
                self._edges += len(cached)
        return list(cached)  # the caller may change its list, never the cached one

    def invalidate(self) -> None:
        """Forget every cached answer: the store was changed beside :meth:`apply` (retention
        deleted old rows). Not counted in :attr:`resets`."""
        self._nodes.clear()
        self._lists.clear()
        self._edges = 0

    def _clear(self) -> None:
        self.invalidate()
        self.resets += 1

    # -- the rest is the store's own --------------------------------------------------------

    def event_edge(self, event_id: str) -> tuple[Edge, int] | None:
        return self.store.event_edge(event_id)

    def find_nodes(self, text: str, *, limit: int = 20) -> list[Node]:
        return self.store.find_nodes(text, limit=limit)

    def stats(self) -> GraphStats:
        return self.store.stats()

    def next_edge_id(self) -> int:
        return self.store.next_edge_id()

    def meta(self, key: str) -> str | None:
        return self.store.meta(key)

    def ingested(self, digest: str) -> tuple[str, int] | None:
        return self.store.ingested(digest)

    def record_ingest(  # noqa: PLR0913  (the store's signature)
        self, *, digest: str, source: str, format: str, events: int, rejected: int, finished_at: int
    ) -> None:
        self.store.record_ingest(
            digest=digest,
            source=source,
            format=format,
            events=events,
            rejected=rejected,
            finished_at=finished_at,
        )

    def close(self) -> None:
        self.store.close()
