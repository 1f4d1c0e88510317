"""Hubs: nodes so widely shared that a causal path through them says nothing.

A process with very many children (init, cron, a login shell running a workload), a
network server (a process that accepts connections: each child serves another client), a
file or an endpoint that very many processes share. Campaign searches stop at hubs and a hub
never joins two campaigns; the first non-hub process below a hub is an entry point.

Answers are cached: once a hub, always a hub (fan-out only grows); a "not a hub" answer
holds until :meth:`HubIndex.refresh`, which the engine calls once per batch of signals.
"""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.graph.records import Node, NodeKind
from provarmor.graph.store import GraphStore

SYSTEM_PIDS = frozenset({1, 2})
"""init and kthreadd: hubs however few children the graph has seen."""


@dataclass(slots=True)
class HubCounters:
    checked: int = 0
    hubs: int = 0
    servers: int = 0


class HubIndex:
    """Which nodes are hubs, and which processes are network servers."""

    def __init__(self, store: GraphStore, *, fanout: int) -> None:
        self._store = store
        self._fanout = fanout
        self._hubs: set[str] = set()
        self._servers: set[str] = set()
        self._plain: set[str] = set()
        self.counters = HubCounters()

    def refresh(self) -> None:
        """Forget "not a hub" answers (the graph has grown since)."""
        self._plain.clear()

    def is_hub(self, node: Node) -> bool:
        if node.id in self._hubs:
            return True
        if node.id in self._plain:
            return False
        self.counters.checked += 1
        hub = self._classify(node)
        if hub:
            self._hubs.add(node.id)
            self.counters.hubs += 1
        else:
            self._plain.add(node.id)
        return hub

    def is_server(self, node: Node) -> bool:
        """A process that accepted network connections (it is also a hub)."""
        return self.is_hub(node) and node.id in self._servers

    def _classify(self, node: Node) -> bool:
        store = self._store
        if node.kind is NodeKind.PROCESS:
            if node.pid in SYSTEM_PIDS:
                return True
            if any(edge.action == "accept" for edge in store.in_edges(node.id)):
                self._servers.add(node.id)
                self.counters.servers += 1
                return True
            children = {edge.dst for edge in store.out_edges(node.id) if edge.action == "fork"}
            return len(children) >= self._fanout
        sources = {edge.src for edge in store.in_edges(node.id)}
        if len(sources) >= self._fanout:
            return True
        targets = {edge.dst for edge in store.out_edges(node.id)}
        return len(targets) >= self._fanout
