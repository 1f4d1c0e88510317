"""A persistent graph store seen through a read cache, for the analysis that writes it.

The incident engine reads the same nodes and edge lists again and again: every new version
of an incident rebuilds its story from the graph (entry points, forward expansion, sensitive
reads), and a host's incident is rebuilt as its attack goes on. Against SQL each read is a
query (a round trip against a server). :class:`ReadCachedStore` keeps :meth:`node`,
:meth:`nodes_of`, :meth:`in_edges`, :meth:`out_edges` and :meth:`meta` answers and, after each
committed :meth:`apply`, brings those the delta touched up to date as the store's upserts
changed their rows (a cached node merged with its written versions, an edge list with the
written edges in edge-id order, the meta entries set; a delta that raised changed nothing):
a story rebuilt after a write reads the store only for what it never read. That is exact only
while every write to the store goes through this object: the analysis that owns the store (one
writer per host graph). Readers elsewhere (the manager's API, another process) use the store
itself. Both caches are bounded; a full one is cleared (counted in :attr:`resets`).

With ``write_behind`` the writes wait in memory until :meth:`flush`: reads answer as if they
had been written (a stored node merged with its pending versions as the store's upsert would
merge them, an edge list with its pending edges in edge-id order, the pending meta entries),
and :meth:`flush` writes them all in one transaction. A host's analysis uses that to write its
graph only together with its checkpoint (:mod:`provarmor.manager.ingest`): the graph never
runs ahead of the state the checkpoint restores. The pending writes are part of the pickled
state (a checkpoint written before they reach the store carries them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from provarmor.graph.builder import GraphDelta
from provarmor.graph.records import Edge, Node, merge_node
from provarmor.graph.store import GraphStats, PersistentGraphStore

MAX_NODES = 20_000
"""Nodes the cache holds at most."""
MAX_EDGES = 100_000
"""Edges the cached in/out lists hold at most, in all."""


class ReadCachedStore:
    """``store`` with cached reads; every write must go through :meth:`apply`."""

    def __init__(
        self,
        store: PersistentGraphStore,
        *,
        max_nodes: int = MAX_NODES,
        max_edges: int = MAX_EDGES,
        write_behind: bool = False,
    ) -> None:
        self.store = store
        self.max_nodes = max_nodes
        self.max_edges = max_edges
        self.write_behind = write_behind
        self._pending = _Pending()
        self.resets = 0
        """Times a full cache was cleared (each costs later reads only)."""
        self._nodes: dict[str, Node | None] = {}
        self._lists: dict[tuple[bool, str], list[Edge]] = {}
        """``(incoming?, node id)`` -> its edges."""
        self._edges = 0
        self._meta: dict[str, str | None] = {}

    def __getstate__(self) -> dict[str, object]:
        """A checkpoint of the analysis keeps the store and the bounds, not the cached
        answers (they are the store's own rows: a restored cache starts empty)."""
        return {
            "store": self.store,
            "max_nodes": self.max_nodes,
            "max_edges": self.max_edges,
            "resets": self.resets,
            "write_behind": self.write_behind,
            "_pending": self._pending,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._nodes = {}
        self._lists = {}
        self._edges = 0
        self._meta = {}

    def apply(self, delta: GraphDelta, *, meta: dict[str, str] | None = None) -> None:
        if self.write_behind:
            self._pending.add(delta, meta or {})
            return
        self._write(delta, meta)

    def _write(self, delta: GraphDelta, meta: dict[str, str] | None) -> None:
        self.store.apply(delta, meta=meta)
        self._meta.update(meta or {})
        nodes = self._nodes
        for node in delta.nodes:
            if node.id in nodes:
                cached = nodes[node.id]
                nodes[node.id] = copy.copy(node) if cached is None else merge_node(cached, node)
        written: dict[tuple[bool, str], dict[int, Edge]] = {}
        for edge in (*delta.new_edges, *delta.updated_edges):
            for key in ((True, edge.dst), (False, edge.src)):
                if key in self._lists:
                    written.setdefault(key, {})[edge.id] = edge
        for key, edges in written.items():
            self._merge_list(key, edges)

    def _merge_list(self, key: tuple[bool, str], written: dict[int, Edge]) -> None:
        """The cached list ``key`` with the ``written`` edges (copies) in, in edge-id order."""
        old = self._lists[key]
        merged = {edge.id: edge for edge in old}
        merged.update((edge_id, copy.copy(edge)) for edge_id, edge in written.items())
        self._edges += len(merged) - len(old)
        self._lists[key] = [merged[edge_id] for edge_id in sorted(merged)]
        if self._edges > self.max_edges:
            self._clear()

    @property
    def pending(self) -> bool:
        """Whether writes wait for :meth:`flush`."""
        return not self._pending.empty

    @property
    def pending_meta(self) -> dict[str, str]:
        """The meta entries the pending writes set."""
        return dict(self._pending.meta)

    def flush(self) -> None:
        """Write the pending writes in one transaction (a failure keeps them pending)."""
        if self._pending.empty:
            return
        self._write(self._pending.delta(), self._pending.meta)
        self._pending = _Pending()

    def discard_pending(self) -> None:
        """Forget the pending writes: the store already holds them (a checkpoint restored
        after its writes were flushed)."""
        self._pending = _Pending()

    def node(self, node_id: str) -> Node | None:
        return self._with_pending(node_id, self._stored_node(node_id))

    def nodes_of(self, node_ids: Iterable[str]) -> dict[str, Node]:
        """The nodes among ``node_ids``, those not cached read from the store at once."""
        wanted = list(dict.fromkeys(node_ids))
        cached = self._nodes
        stored = {node_id: cached[node_id] for node_id in wanted if node_id in cached}
        missing = [node_id for node_id in wanted if node_id not in stored]
        if missing:
            found = self.store.nodes_of(missing)
            if len(cached) + len(missing) > self.max_nodes:
                self._clear()
            for node_id in missing:
                stored[node_id] = found.get(node_id)
                if len(cached) < self.max_nodes:
                    cached[node_id] = stored[node_id]
        merged = {node_id: self._with_pending(node_id, stored[node_id]) for node_id in wanted}
        return {node_id: node for node_id, node in merged.items() if node is not None}

    def _with_pending(self, node_id: str, stored: Node | None) -> Node | None:
        waiting = self._pending.nodes.get(node_id)
        if waiting is None:
            return stored
        return waiting if stored is None else merge_node(stored, waiting)

    def _stored_node(self, node_id: str) -> Node | None:
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
        waiting = self._pending.ends.get(key)
        if not waiting:
            return list(cached)  # the caller may change its list, never the cached one
        merged = {edge.id: edge for edge in cached}
        edges = self._pending.edges
        merged.update((edge_id, edges[edge_id]) for edge_id in waiting)
        return [merged[edge_id] for edge_id in sorted(merged)]

    def invalidate(self) -> None:
        """Forget every cached answer: the store was changed beside :meth:`apply` (retention
        deleted old rows). Not counted in :attr:`resets`."""
        self._nodes.clear()
        self._lists.clear()
        self._edges = 0
        self._meta.clear()

    def _clear(self) -> None:
        self.invalidate()
        self.resets += 1

    # -- the rest is the store's own (committed rows only) ------------------------------

    def event_edge(self, event_id: str) -> tuple[Edge, int] | None:
        return self.store.event_edge(event_id)

    def find_nodes(self, text: str, *, limit: int = 20) -> list[Node]:
        return self.store.find_nodes(text, limit=limit)

    def stats(self) -> GraphStats:
        return self.store.stats()

    def next_edge_id(self) -> int:
        return max(self.store.next_edge_id(), self._pending.next_edge_id)

    def meta(self, key: str) -> str | None:
        waiting = self._pending.meta.get(key)
        return waiting if waiting is not None else self.stored_meta(key)

    def stored_meta(self, key: str) -> str | None:
        """The store's value of ``key`` (the pending writes left out), cached."""
        if key not in self._meta:
            self._meta[key] = self.store.meta(key)
        return self._meta[key]

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


class _Pending:
    """Writes waiting for :meth:`ReadCachedStore.flush`, folded as the store would fold them:
    each node's versions merged, each edge at its latest (new ones told apart from updates
    of stored ones), each event's latest edge, the meta entries' latest values. Every record
    is copied when it arrives (the graph builder goes on changing its own)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: dict[int, Edge] = {}
        self.new: set[int] = set()
        """Ids of the edges the store does not have yet."""
        self.ends: dict[tuple[bool, str], set[int]] = {}
        """``(incoming?, node id)`` -> ids of its pending edges."""
        self.events: dict[str, tuple[int, int]] = {}
        self.gaps: list[tuple[str, int, int]] = []
        self.meta: dict[str, str] = {}
        self.next_edge_id = 0

    @property
    def empty(self) -> bool:
        return not (self.nodes or self.edges or self.events or self.gaps or self.meta)

    def add(self, delta: GraphDelta, meta: dict[str, str]) -> None:
        nodes = self.nodes
        for node in delta.nodes:
            old = nodes.get(node.id)
            nodes[node.id] = copy.copy(node) if old is None else merge_node(old, node)
        for edge in delta.new_edges:
            self.new.add(edge.id)
            self.next_edge_id = max(self.next_edge_id, edge.id + 1)
        for edge in (*delta.new_edges, *delta.updated_edges):
            self.edges[edge.id] = copy.copy(edge)
            self.ends.setdefault((True, edge.dst), set()).add(edge.id)
            self.ends.setdefault((False, edge.src), set()).add(edge.id)
        for event, edge_id, ts in delta.event_edges:
            self.events[event] = (edge_id, ts)
        self.gaps += delta.gaps
        self.meta.update(meta)

    def delta(self) -> GraphDelta:
        """The pending writes as one delta (the store applies it in one transaction)."""
        edges = sorted(self.edges.values(), key=lambda edge: edge.id)
        return GraphDelta(
            nodes=list(self.nodes.values()),
            new_edges=[edge for edge in edges if edge.id in self.new],
            updated_edges=[edge for edge in edges if edge.id not in self.new],
            event_edges=[(event, edge, ts) for event, (edge, ts) in self.events.items()],
            gaps=list(self.gaps),
        )
