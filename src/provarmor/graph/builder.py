"""Event -> graph deltas, with causality-preserving reduction and bounded memory.

Edges follow information flow: file -> process for reads and execs, process -> file for
writes, parent -> child for forks, process -> endpoint for connect/send, endpoint -> process
for accept/recv, process -> process for ptrace/kill.

Connections between observed processes: a successful TCP ``connect`` whose event names the
client's own end (``source`` ip and port, as the eBPF source fills it) also adds a
``connection`` edge from the client to the node of that end, ``sock:<client ip>:<port>``. The
server's ``accept`` names the same end as its remote peer, so its edge starts at the very same
node: client -> (connection) -> its end -> (accept) -> server is a path, keyed by the
connection's ephemeral port rather than by the server's shared address, so clients of one
server are not linked to each other. Sources that do not report the local end of a connect
(auditd knows it only after an explicit ``bind``) add no such edge.

Host logs: an event of a host log names its process by pid only; :mod:`.logins` gives it
the entity id of the process the sensor saw (same host and pid, alive then), and a
successful remote login adds a node for its source endpoint with a ``login`` edge to the
process that accepted it (the user, address, method and preceding failures on the node).

Reduction (after Xu et al., CCS 2016): a repeated flow ``u -> v`` is merged into the open edge
for ``(u, v, action)`` only when no information entered ``u`` and none left ``v`` since that
edge's last event. Then every time-respecting path through the merged edge existed before
the merge as well, so backward and forward traces give the same answers.

Memory is bounded: past ``max_nodes`` nodes the least recently active tenth is evicted
(already drained to the store, so nothing is lost), together with the reduction state of
their open edges. Evictions are counted in :class:`BuilderCounters`; a flow whose open edge
was evicted just starts a new edge.

The builder's tables (nodes held, open edges, their sequence numbers) grow with the host's
history, so a checkpoint takes them as changes: :meth:`GraphBuilder.take_tables` hands out
the entries changed since the last call (or all of them) as typed records
(:mod:`.builder_tables`), and :meth:`GraphBuilder.put_tables` applies such records, in
order, to a builder restored without its tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from provarmor.graph.builder_tables import EdgeEntry, NodeEntry, TablesChunk
from provarmor.graph.logins import LOGIN, JoinLimits, Login, LogJoin
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.model.ids import file_node_id, socket_node_id

PROCESS_TO_FILE = frozenset(
    {
        Action.WRITE,
        Action.CREATE,
        Action.TRUNCATE,
        Action.DELETE,
        Action.CHMOD,
        Action.CHOWN,
        Action.MEMFD_CREATE,
    }
)
FILE_TO_PROCESS = frozenset({Action.OPEN, Action.READ, Action.MMAP_EXEC, Action.MODULE_LOAD})
PROCESS_TO_PEER = frozenset({Action.CONNECT, Action.SEND})
PEER_TO_PROCESS = frozenset({Action.ACCEPT, Action.RECV})
LOCAL_ENDPOINT = frozenset({Action.BIND, Action.LISTEN})
PROCESS_TO_PROCESS = frozenset({Action.PTRACE, Action.KILL})
# Read on the per-event path as module globals: on CPython 3.11 an attribute read on an
# Enum class goes through EnumType.__getattr__'s slow hook (~0.15 us; a global ~0.01 us).
_GAP, _FORK, _EXEC, _EXIT = Action.GAP, Action.FORK, Action.EXEC, Action.EXIT
_RENAME, _LINK, _CONNECT = Action.RENAME, Action.LINK, Action.CONNECT
_SETUID, _SETGID = Action.SETUID, Action.SETGID
_NAMES = {action: action.value for action in Action}
"""Each action's name (``Action.value`` is a slow property too)."""
CONNECTION = "connection"
"""Edge action: a client process -> its own end of a TCP connection it opened."""
_K = TypeVar("_K")
_V = TypeVar("_V")
WILDCARD_IPS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104  (matched, never bound)


@dataclass(slots=True)
class BuilderCounters:
    events: int = 0
    edges_created: int = 0
    edges_merged: int = 0
    nodes_created: int = 0
    nodes_evicted: int = 0
    open_edges_evicted: int = 0
    events_without_object: int = 0
    """Events whose action needs an object (file, peer) the event did not carry."""
    gaps: int = 0
    edges_marked_incomplete: int = 0
    programless_forgotten: int = 0
    """Parents whose children made without a program were forgotten (bounded memory):
    a late fork of theirs no longer labels those children."""
    nodes_forgotten: int = 0
    """Nodes dropped because retention deleted them from the store (:meth:`GraphBuilder.
    forget`); a later event about one makes it anew."""


@dataclass(slots=True)
class GraphDelta:
    """What changed since the last drain: every node and edge to write to the store."""

    nodes: list[Node] = field(default_factory=list)
    new_edges: list[Edge] = field(default_factory=list)
    updated_edges: list[Edge] = field(default_factory=list)
    event_edges: list[tuple[str, int, int]] = field(default_factory=list)
    """``(event id, edge id, timestamp)`` for every event that made or grew an edge."""
    gaps: list[tuple[str, int, int]] = field(default_factory=list)
    """``(host, timestamp, lost count)`` for every sensor gap."""


@dataclass(slots=True, kw_only=True)
class BuilderLimits:
    max_nodes: int = 300_000
    max_open_edges: int = 500_000
    join: JoinLimits = field(default_factory=JoinLimits)


class GraphBuilder:
    """Turns canonical events into nodes and edges. Feed with :meth:`add`; take the
    changes with :meth:`drain` (then :meth:`evict` may trim memory)."""

    TABLES = ("_nodes", "_node_seq", "_last_in", "_last_out", "_open", "_touched")
    """The attributes :meth:`take_tables` hands out (a checkpoint keeps them apart)."""
    TRACKERS = ("_changed_nodes", "_changed_open")
    CACHES: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        limits: BuilderLimits | None = None,
        next_edge_id: int = 1,
        index_events: bool = True,
    ) -> None:
        self.limits = limits or BuilderLimits()
        self.counters = BuilderCounters()
        self.join = LogJoin(self.limits.join)
        """Log events -> the sensor's processes (see :mod:`provarmor.graph.logins`)."""
        self._index_events = index_events
        self._next_edge_id = next_edge_id
        self._seq = 0
        self._nodes: dict[str, Node] = {}
        self._node_seq: dict[str, int] = {}
        self._last_in: dict[str, int] = {}
        self._last_out: dict[str, int] = {}
        self._open: dict[tuple[str, str, str], tuple[Edge, int]] = {}
        self._programless: dict[str, list[str]] = {}
        """Parent id -> its children whose nodes were made without a program: they run the
        parent's, which a late fork of the parent tells (see :meth:`_learn`)."""
        self._delta = GraphDelta()
        self._dirty_nodes: dict[str, Node] = {}
        self._touched: dict[str, Node] = {}
        self._new_edge_ids: set[int] = set()
        self._updated: dict[int, Edge] = {}
        self._changed_nodes: dict[str, bool] | None = None
        """Node ids whose entries in the node tables changed since :meth:`take_tables`
        (True: inserted meanwhile, so last in the tables' order); None until a first
        :meth:`take_tables` (a builder nobody checkpoints tracks nothing)."""
        self._changed_open: dict[tuple[str, str, str], bool] | None = None
        """The same for the open edges' keys."""

    # ------------------------------------------------------------------ events
    def add(self, event: Event) -> Event:
        """Apply one event; returns it as the graph recorded it (a host log's event names
        the sensor's process when one matches: :mod:`provarmor.graph.logins`)."""
        event = self.join.join(event)
        self._apply(event)
        login = self.join.take_login()
        if login is not None:
            self._login(login, event)
        return event

    def _apply(self, event: Event) -> None:  # noqa: C901  (one dispatch on the action set)
        self.counters.events += 1
        self._seq += 1
        action = event.event.action
        ts = event.timestamp
        if action is _GAP:
            self._gap(event)
            return
        process_id, created = self._process_node(event, ts)
        if action is _FORK:
            parent = event.process.parent
            if parent is not None and parent.entity_id:
                self._parent_node(event, ts)
                self._flow(parent.entity_id, process_id, "fork", event)
            return
        if action is _EXEC:
            self._exec(event, process_id, ts, created=created)
            return
        if action is _EXIT:
            self._nodes[process_id].exited = True
            self._dirty_nodes[process_id] = self._nodes[process_id]
            return
        if action in PROCESS_TO_FILE or action in FILE_TO_PROCESS:
            file = event.file
            if file is None or not file.path:
                self.counters.events_without_object += 1
                return
            file_id = self._file_node(event.host.id, file.path, ts)
            if action in PROCESS_TO_FILE:
                self._flow(process_id, file_id, _NAMES[action], event)
            else:
                self._flow(file_id, process_id, _NAMES[action], event)
            return
        if action is _RENAME or action is _LINK:
            self._rename(event, process_id, ts)
            return
        if action in PROCESS_TO_PEER or action in PEER_TO_PROCESS or action in LOCAL_ENDPOINT:
            peer_id = self._endpoint_node(event, ts, local=action in LOCAL_ENDPOINT)
            if peer_id is None:
                self.counters.events_without_object += 1
                return
            if action in PEER_TO_PROCESS:
                self._flow(peer_id, process_id, _NAMES[action], event)
            else:
                self._flow(process_id, peer_id, _NAMES[action], event)
                if action is _CONNECT:
                    self._connection(event, process_id, ts)
            return
        if action in PROCESS_TO_PROCESS:
            target = event.target.process if event.target is not None else None
            if target is None or not target.entity_id:
                self.counters.events_without_object += 1
                return
            target_id = self._ref_node(target.entity_id, target.pid, target.executable, event, ts)
            self._flow(process_id, target_id, _NAMES[action], event)
            return
        if action is _SETUID or action is _SETGID:
            node = self._nodes[process_id]
            if action is _SETUID and event.target is not None and event.target.user:
                node.user = event.target.user.id
                self._dirty_nodes[process_id] = node
            return

    # ------------------------------------------------------------------ nodes
    def _touch(self, node_id: str, ts: int) -> Node | None:
        node = self._nodes.get(node_id)
        if node is not None:
            if ts > node.last_ts:
                node.last_ts = ts
            elif ts < node.first_ts:
                node.first_ts = ts
            self._node_seq[node_id] = self._seq
            self._touched[node_id] = node
            changed = self._changed_nodes
            if changed is not None and node_id not in changed:
                changed[node_id] = False
        return node

    def _new(self, node: Node) -> None:
        self._nodes[node.id] = node
        self._node_seq[node.id] = self._seq
        self._dirty_nodes[node.id] = node
        self.counters.nodes_created += 1
        changed = self._changed_nodes
        if changed is not None:
            changed.pop(node.id, None)
            changed[node.id] = True

    def _process_node(self, event: Event, ts: int) -> tuple[str, bool]:
        process = event.process
        node_id = process.entity_id
        node = self._touch(node_id, ts)
        if node is not None:
            parent = process.parent
            if (not node.executable and process.executable) or (
                not node.parent and parent is not None and parent.entity_id
            ):
                self._learn(node, event)
            return node_id, False
        executable = process.executable
        parent = process.parent
        if not executable and parent is not None and parent.entity_id:
            self._remember_programless(parent.entity_id, node_id)
        self._new(
            Node(
                id=node_id,
                kind=NodeKind.PROCESS,
                host=event.host.id,
                first_ts=ts,
                last_ts=ts,
                label=executable or process.name or f"pid {process.pid}",
                pid=process.pid,
                executable=executable,
                command_line=process.command_line or " ".join(process.args),
                user=process.user.id if process.user is not None else "",
                parent=parent.entity_id if parent is not None else "",
            )
        )
        return node_id, True

    def _learn(self, node: Node, event: Event) -> None:
        """What a process's first events did not say (a sensor learns a program and parent
        when a fork arrives late): the same node gets it, nothing replaces what it had.
        A fork's program is also the program of the children it had meanwhile."""
        process = event.process
        if not node.executable and process.executable:
            node.executable = node.label = process.executable
            if event.event.action is Action.FORK:
                self._fill_programless(node)
        node.command_line = node.command_line or process.command_line or " ".join(process.args)
        if not node.user and process.user is not None:
            node.user = process.user.id
        if not node.parent and process.parent is not None and event.event.action is Action.FORK:
            # only a fork names the creator; later events may name an adoptive parent (init)
            node.parent = process.parent.entity_id
        self._dirty_nodes[node.id] = node

    def _remember_programless(self, parent_id: str, child_id: str) -> None:
        self._programless.setdefault(parent_id, []).append(child_id)
        if len(self._programless) > self.limits.max_nodes:
            del self._programless[next(iter(self._programless))]
            self.counters.programless_forgotten += 1

    def _fill_programless(self, parent: Node) -> None:
        waiting = [parent]
        while waiting:
            current = waiting.pop()
            for child_id in self._programless.pop(current.id, []):
                child = self._nodes.get(child_id)
                if child is not None and not child.executable:
                    child.executable = child.label = current.executable
                    child.command_line = child.command_line or current.command_line
                    self._dirty_nodes[child_id] = child
                    self._changed(child_id)
                    waiting.append(child)

    def _parent_node(self, event: Event, ts: int) -> None:
        parent = event.process.parent
        assert parent is not None
        self._ref_node(parent.entity_id, parent.pid, parent.executable, event, ts)

    def _ref_node(self, entity_id: str, pid: int, executable: str, event: Event, ts: int) -> str:
        node = self._touch(entity_id, ts)
        if node is not None and not node.executable and executable:
            node.executable = node.label = executable
            self._dirty_nodes[entity_id] = node
        if node is None:
            self._new(
                Node(
                    id=entity_id,
                    kind=NodeKind.PROCESS,
                    host=event.host.id,
                    first_ts=ts,
                    last_ts=ts,
                    label=executable or f"pid {pid}",
                    pid=pid,
                    executable=executable,
                )
            )
        return entity_id

    def _file_node(self, host: str, path: str, ts: int) -> str:
        node_id = file_node_id(host, path)
        if self._touch(node_id, ts) is None:
            self._new(
                Node(
                    id=node_id,
                    kind=NodeKind.FILE,
                    host=host,
                    first_ts=ts,
                    last_ts=ts,
                    label=path,
                    path=path,
                )
            )
        return node_id

    def _endpoint_node(self, event: Event, ts: int, *, local: bool) -> str | None:
        endpoint = event.source if local else event.destination
        if endpoint is None or not (endpoint.ip or endpoint.address):
            return None
        host = event.host.id
        if local:
            shown = f"{endpoint.ip}:{endpoint.port}" if endpoint.ip else endpoint.address
            node_id = socket_node_id(host, ip="", port=0, address=f"listen:{shown}")
            label = f"listen {shown}"
        else:
            node_id = socket_node_id(
                host, ip=endpoint.ip, port=endpoint.port, address=endpoint.address
            )
            label = f"{endpoint.ip}:{endpoint.port}" if endpoint.ip else endpoint.address
        if self._touch(node_id, ts) is None:
            self._new(
                Node(
                    id=node_id,
                    kind=NodeKind.SOCKET,
                    host=host,
                    first_ts=ts,
                    last_ts=ts,
                    label=label,
                    ip=endpoint.ip,
                    port=endpoint.port,
                    path=endpoint.address,
                )
            )
        return node_id

    def _connection(self, event: Event, process_id: str, ts: int) -> None:
        """The client's own end of a TCP connection it opened (see the module docstring)."""
        local = event.source
        network = event.network
        if (
            local is None
            or local.ip in WILDCARD_IPS
            or not local.port
            or event.event.outcome == "failure"
            or network is None
            or network.transport != "tcp"
        ):
            return
        node_id = socket_node_id(event.host.id, ip=local.ip, port=local.port)
        if self._touch(node_id, ts) is None:
            self._new(
                Node(
                    id=node_id,
                    kind=NodeKind.SOCKET,
                    host=event.host.id,
                    first_ts=ts,
                    last_ts=ts,
                    label=f"{local.ip}:{local.port}",
                    ip=local.ip,
                    port=local.port,
                )
            )
        self._flow(process_id, node_id, CONNECTION, event)

    def _login(self, login: Login, event: Event) -> None:
        """The source endpoint of a login -> the process that accepted it."""
        node_id = login.node_id
        if self._touch(node_id, login.timestamp) is None:
            self._new(
                Node(
                    id=node_id,
                    kind=NodeKind.SOCKET,
                    host=login.host,
                    first_ts=login.timestamp,
                    last_ts=login.timestamp,
                    label=login.label,
                    ip=login.ip,
                    port=login.port,
                    user=login.user,
                )
            )
        self._changed(login.process)  # its time of last information in changes
        self._flow(node_id, login.process, LOGIN, event)

    def _exec(self, event: Event, process_id: str, ts: int, *, created: bool) -> None:
        process = event.process
        node = self._nodes[process_id]
        if process.executable:
            node.executable = process.executable
            node.label = process.executable
        command_line = process.command_line or " ".join(process.args)
        if command_line:
            node.command_line = command_line
        self._dirty_nodes[process_id] = node
        program = (
            event.file.path if event.file is not None and event.file.path else process.executable
        )
        if program:
            self._flow(self._file_node(event.host.id, program, ts), process_id, "exec", event)
        parent = process.parent
        if created and parent is not None and parent.entity_id and parent.entity_id != process_id:
            # The source reports no forks (exec is the first we hear of this process):
            # the parent -> child edge is implied by the exec.
            self._parent_node(event, ts)
            self._flow(parent.entity_id, process_id, "fork", event)

    def _rename(self, event: Event, process_id: str, ts: int) -> None:
        file = event.file
        if file is None or not file.path:
            self.counters.events_without_object += 1
            return
        host = event.host.id
        new_id = self._file_node(host, file.path, ts)
        if file.original_path:
            old_id = self._file_node(host, file.original_path, ts)
            self._flow(old_id, new_id, _NAMES[event.event.action], event)
        self._flow(process_id, new_id, _NAMES[event.event.action], event)

    # ------------------------------------------------------------------ edges
    def _flow(self, src: str, dst: str, action: str, event: Event) -> None:
        seq = self._seq
        ts = event.timestamp
        last = max(ts, event.event.end)  # an aggregated flow spans its first to last record
        key = (src, dst, action)
        opened = self._open.get(key)
        changed = self._changed_open  # (both ends were touched: their entries are marked)
        if changed is not None:
            if opened is None:
                changed.pop(key, None)
                changed[key] = True
            elif key not in changed:
                changed[key] = False
        if opened is not None:
            edge, edge_seq = opened
            if self._last_in.get(src, -1) < edge_seq and self._last_out.get(dst, -1) < edge_seq:
                edge.count += event.event.count
                if last >= edge.last_ts:
                    edge.last_ts = last
                    edge.last_event = event.event.id
                if ts < edge.first_ts:
                    edge.first_ts = ts
                self._open[key] = (edge, seq)
                if edge.id not in self._new_edge_ids:
                    self._updated[edge.id] = edge
                self.counters.edges_merged += 1
                self._last_out[src] = seq
                self._last_in[dst] = seq
                if self._index_events:
                    self._delta.event_edges.append((event.event.id, edge.id, ts))
                return
        edge = Edge(
            id=self._next_edge_id,
            src=src,
            dst=dst,
            action=action,
            first_ts=ts,
            last_ts=last,
            count=event.event.count,
            first_event=event.event.id,
            last_event=event.event.id,
        )
        self._next_edge_id += 1
        self._open[key] = (edge, seq)
        self._new_edge_ids.add(edge.id)
        self._delta.new_edges.append(edge)
        self.counters.edges_created += 1
        self._last_out[src] = seq
        self._last_in[dst] = seq
        if self._index_events:
            self._delta.event_edges.append((event.event.id, edge.id, ts))

    def _gap(self, event: Event) -> None:
        """Lost events: mark the host's open edges incomplete and close them, so nothing
        observed after the gap is merged into an edge that may be missing parts."""
        self.counters.gaps += 1
        host = event.host.id
        entity = event.process.entity_id
        self._delta.gaps.append((host, event.timestamp, event.event.count))
        for key, (edge, _seq) in list(self._open.items()):
            src, dst, _action = key
            if entity and entity not in (src, dst):
                continue
            node = self._nodes.get(src)
            if node is None or node.host != host:
                continue
            edge.incomplete = True
            self.counters.edges_marked_incomplete += 1
            if edge.id not in self._new_edge_ids:
                self._updated[edge.id] = edge
            del self._open[key]
            self._changed_key(key)

    # ------------------------------------------------------------------ output
    def drain(self, *, full: bool = False) -> GraphDelta:
        """What changed since the previous drain, for the store.

        New and relabelled nodes always come with it; nodes whose only change is a later
        ``last_ts`` come only with a ``full`` drain (call one periodically and at the end),
        which keeps the store's writes proportional to new information, not to activity.
        """
        delta = self._delta
        if full:
            self._touched.update(self._dirty_nodes)
            delta.nodes = list(self._touched.values())
            for node_id in self._touched:
                self._changed(node_id)
            self._touched = {}
        else:
            delta.nodes = list(self._dirty_nodes.values())
        delta.updated_edges = list(self._updated.values())
        self._delta = GraphDelta()
        self._dirty_nodes = {}
        self._new_edge_ids = set()
        self._updated = {}
        return delta

    @property
    def next_edge_id(self) -> int:
        return self._next_edge_id

    def node(self, node_id: str) -> Node | None:
        """A node still held in memory (recently active), else ``None``."""
        return self._nodes.get(node_id)

    def forget(self, node_ids: Iterable[str], *, edges_before: int) -> None:
        """Drop what retention deleted from the store: the nodes ``node_ids`` and every open
        edge whose last event is older than ``edges_before`` (or that touches a dropped
        node), so that no later edge refers to a deleted node and no update goes to a
        deleted edge. Call between batches (after :meth:`drain`)."""
        for node_id in node_ids:
            self._changed(node_id)
            if self._nodes.pop(node_id, None) is None:
                continue
            self._node_seq.pop(node_id, None)
            self._last_in.pop(node_id, None)
            self._last_out.pop(node_id, None)
            self._programless.pop(node_id, None)
            self._touched.pop(node_id, None)
            self.counters.nodes_forgotten += 1
        nodes = self._nodes
        stale = [
            key
            for key, (edge, _seq) in self._open.items()
            if edge.last_ts < edges_before or key[0] not in nodes or key[1] not in nodes
        ]
        for key in stale:
            del self._open[key]
            self._changed_key(key)
        self.counters.open_edges_evicted += len(stale)

    def evict(self) -> None:
        """Trim memory to the limits. Call right after :meth:`drain`: only clean state is
        evicted. Counted in :attr:`counters`."""
        limits = self.limits
        if len(self._nodes) > limits.max_nodes:
            keep = int(limits.max_nodes * 0.9)
            ranked = sorted(self._node_seq.items(), key=lambda item: item[1])
            for node_id, _seq in ranked[: len(ranked) - keep]:
                touched = self._touched.pop(node_id, None)
                if touched is not None:
                    self._dirty_nodes[node_id] = touched  # its last_ts goes out next drain
                del self._nodes[node_id]
                del self._node_seq[node_id]
                self._changed(node_id)
                self._last_in.pop(node_id, None)
                self._last_out.pop(node_id, None)
                self._programless.pop(node_id, None)
                self.counters.nodes_evicted += 1
            stale = [
                key for key in self._open if key[0] not in self._nodes or key[1] not in self._nodes
            ]
            for key in stale:
                del self._open[key]
                self._changed_key(key)
            self.counters.open_edges_evicted += len(stale)
        if len(self._open) > limits.max_open_edges:
            keep = int(limits.max_open_edges * 0.9)
            ranked_edges = sorted(self._open.items(), key=lambda item: item[1][1])
            for key, _value in ranked_edges[: len(ranked_edges) - keep]:
                del self._open[key]
                self._changed_key(key)
                self.counters.open_edges_evicted += 1

    # ------------------------------------------------------------------ checkpoints
    def _changed(self, node_id: str) -> None:
        if self._changed_nodes is not None:
            self._changed_nodes.setdefault(node_id, False)

    def _changed_key(self, key: tuple[str, str, str]) -> None:
        if self._changed_open is not None:
            self._changed_open.setdefault(key, False)

    def take_tables(self, *, full: bool) -> TablesChunk:
        """The tables' entries changed since the last call (``full``: every entry, as if
        into empty tables), in the order :meth:`put_tables` must apply them; tracks
        changes from then on."""
        if full:
            nodes = dict.fromkeys(self._node_seq, True)
            nodes.update(dict.fromkeys(self._last_in.keys() - nodes.keys(), True))
            nodes.update(dict.fromkeys(self._last_out.keys() - nodes.keys(), True))
            opened = dict.fromkeys(self._open, True)
        elif self._changed_nodes is None or self._changed_open is None:
            raise ValueError("no changes were tracked: take a full chunk first")
        else:
            nodes, opened = self._changed_nodes, self._changed_open
        self._changed_nodes, self._changed_open = {}, {}
        held, seqs, last_in, last_out = self._nodes, self._node_seq, self._last_in, self._last_out
        touched, open_edges = self._touched, self._open
        return TablesChunk(
            nodes=[
                NodeEntry(
                    node_id,
                    moved,
                    held.get(node_id),
                    seqs.get(node_id),
                    last_in.get(node_id),
                    last_out.get(node_id),
                    node_id in touched,
                )
                for node_id, moved in nodes.items()
            ],
            edges=[
                EdgeEntry(key, moved, *open_edges.get(key, (None, None)))
                for key, moved in opened.items()
            ],
        )

    def put_tables(self, chunk: TablesChunk) -> None:
        """Apply entries :meth:`take_tables` handed out: the chunks in the order they were
        taken, the first a ``full`` one, into a builder whose tables are empty."""
        held, seqs, touched = self._nodes, self._node_seq, self._touched
        for entry in chunk.nodes:
            node_id = entry.id
            if entry.moved:  # (re)inserted: last in the order, as it was
                held.pop(node_id, None)
                seqs.pop(node_id, None)
            _put(held, node_id, entry.node)
            _put(seqs, node_id, entry.seq)
            _put(self._last_in, node_id, entry.last_in)
            _put(self._last_out, node_id, entry.last_out)
            _put(touched, node_id, entry.node if entry.touched else None)
        open_edges = self._open
        for edge_entry in chunk.edges:
            if edge_entry.moved:
                open_edges.pop(edge_entry.key, None)
            if edge_entry.edge is None or edge_entry.seq is None:
                open_edges.pop(edge_entry.key, None)
            else:
                open_edges[edge_entry.key] = (edge_entry.edge, edge_entry.seq)


def _put(table: dict[_K, _V], key: _K, value: _V | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
