"""Hubs: nodes so widely shared that a causal path through them says nothing.

A process with very many children (init, cron, a login shell running a workload), a
network server (a process that accepts connections: each child serves another client), a
process already running when observation began that started several children (its start and
parent were never seen, as for a session manager or a job runner: its children are separate
sessions and nothing says they belong together), a file or an endpoint that very many
processes share, or one of the system-wide databases every login and account lookup reads
(:data:`SHARED_FILES`: a user added by one process and looked up by another, or a history
file a shell wrote and an attacker read, does not make the two one activity). Campaign
searches stop at hubs and a hub never joins two campaigns; the first non-hub process below
a hub is an entry point.

Answers are cached: once a hub, always a hub (fan-out only grows); a "not a hub" answer
holds until :meth:`HubIndex.refresh`, which the engine calls once per batch of signals.
"""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.graph.records import Node, NodeKind
from provarmor.graph.store import GraphStore

SYSTEM_PIDS = frozenset({1, 2})
"""init and kthreadd: hubs however few children the graph has seen."""
SHARED_FILES: tuple[str, ...] = (
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/subuid",
    "/etc/subgid",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/var/run/utmp",
    "/run/utmp",
    "/var/log/wtmp",
    "/var/log/btmp",
    "/var/log/lastlog",
    "/tmp",  # noqa: S108  (paths matched, not used)
    "/var/tmp",  # noqa: S108
    "/dev/shm",  # noqa: S108
    "/run/shm",
)
"""Account, name-service and login-record databases, and the shared temporary directories
themselves (creating a file in /tmp and listing /tmp are not one activity): exact paths."""
SHARED_SUFFIXES: tuple[str, ...] = (
    "/.bash_history",
    "/.zsh_history",
    "/.python_history",
    "/.lesshst",
    "/.viminfo",
    "/.ssh/known_hosts",
)
"""Per-user history files and the list of known ssh hosts: written by every session of the
user, read by any later one."""
UNOBSERVED_SESSION_CHILDREN = 2
"""A process whose start was never observed is a hub from this many children on."""


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
            if len(children) >= self._fanout:
                return True
            return len(children) >= UNOBSERVED_SESSION_CHILDREN and self._start_unseen(node)
        path = node.path or node.label
        if node.kind is NodeKind.FILE and (path in SHARED_FILES or path.endswith(SHARED_SUFFIXES)):
            return True
        sources = {edge.src for edge in store.in_edges(node.id)}
        if len(sources) >= self._fanout:
            return True
        targets = {edge.dst for edge in store.out_edges(node.id)}
        return len(targets) >= self._fanout

    def _start_unseen(self, node: Node) -> bool:
        """Neither the process's parent nor its fork or exec was observed."""
        if node.parent:
            return False
        return not any(edge.action in ("fork", "exec") for edge in self._store.in_edges(node.id))
