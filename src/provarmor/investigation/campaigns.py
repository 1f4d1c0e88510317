"""Campaigns: an online, directed, time-respecting approximation of a Steiner tree that
connects the processes signals name (terminals) over the provenance graph.

Each new terminal runs a bounded BACKWARD search (cheapest first) over the store's in-edges,
following an edge only if it started no later than the time bound the path carries (the
terminal's signal time, then the end of each edge taken), so every path found is a causal
chain that happened in that order. From an endpoint a path goes back only to the client that
owns it (a ``connection`` edge: :mod:`provarmor.graph.builder`), never to the other
processes that connected or sent to it: what one client sends to a server reaches another
client only through the server's own processes, which the graph shows when they are
observed. Noise files, leaf files (never written), local (unix) socket addresses (a service
on this host) and hubs (:mod:`provarmor.investigation.hubs`) are not traversed; a hop
through a remote endpoint costs 2, any other hop 1.

A campaign keeps its Steiner tree (terminals and the paths joining them) and the region its
searches covered, with a pointer from each region node one step toward a terminal. When a
new terminal's search reaches a node of some campaign (tree or region: a common ancestor is
a Steiner point), the terminal joins it with the connecting path; reaching several
campaigns merges them (the oldest keeps its id). A search that reaches nothing founds a new
campaign. Later terminals search backward to earlier ones, which covers the forward
direction; a path that would need an edge after the terminal's activity cannot connect.

A network server is a hub, but a path may cross it from a child it forked to the connection
it accepted just before (the one that child serves), and from there, when the graph links
the client's end of that connection to the client (:mod:`provarmor.graph.builder`), on to the
client process: an ssh login on a second host joins the campaign of the ssh client that made
it, and no other client of that server does.

One more exception joins across a hub: children of the same network server entered within
``server_siblings_hours`` (the same service exploited again for another request) are one
campaign, when the client of the connection a child serves is not in the graph (a remote
client: nothing else says which requests belong together). A child whose client is observed
is linked to that client instead, so the separate logins of local users to one sshd stay
apart. Fan-out hubs such as init never join anything.

Bounded: searches by hops, visited nodes and look-back time; campaigns by count and age
(evictions counted in :class:`CampaignStats`).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from provarmor.graph.builder import CONNECTION
from provarmor.graph.noise import NoiseFilter
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.graph.store import GraphStore
from provarmor.investigation.hubs import HubIndex
from provarmor.investigation.settings import InvestigationSettings
from provarmor.model.alert import Alert
from provarmor.model.time_units import hours_to_ns, seconds_to_ns

MAX_ALERTS_PER_CAMPAIGN = 5_000
SERVED_WITHIN_NS = seconds_to_ns(2)
"""A server's child serves the connection it accepted at most this long before the fork."""


@dataclass(slots=True)
class CampaignStats:
    signals: int = 0
    terminals: int = 0
    terminals_unknown: int = 0
    """Processes a signal named that the graph does not hold (yet)."""
    searches: int = 0
    searches_truncated: int = 0
    nodes_visited: int = 0
    search_ms_max: float = 0.0
    campaigns_founded: int = 0
    joins: int = 0
    merges: int = 0
    server_sibling_merges: int = 0
    campaigns_evicted: int = 0
    alerts_dropped: int = 0
    """Signals not kept in a campaign past ``MAX_ALERTS_PER_CAMPAIGN`` (still scored)."""


@dataclass(slots=True, kw_only=True)
class Campaign:
    """Terminals, the tree joining them, and the region their searches covered."""

    id: str
    host_id: str
    first_ts: int
    last_ts: int
    terminals: dict[str, list[str]] = field(default_factory=dict)
    """Terminal node id -> ids of the signals that named it."""
    alerts: dict[str, Alert] = field(default_factory=dict)
    tree: set[str] = field(default_factory=set)
    tree_edges: dict[int, Edge] = field(default_factory=dict)
    links: dict[str, tuple[str, Edge]] = field(default_factory=dict)
    """Region node -> (the next node toward a terminal, the edge between them)."""
    server_entries: dict[str, int] = field(default_factory=dict)
    """Network server -> when it started a child on this campaign's paths."""
    merged: list[str] = field(default_factory=list)
    """Ids of campaigns absorbed into this one."""
    touched_seq: int = 0

    def members(self) -> Iterable[str]:
        yield from self.tree
        yield from self.links


@dataclass(slots=True)
class SearchResult:
    """What one terminal's search found."""

    preds: dict[str, tuple[str, Edge]] = field(default_factory=dict)
    """Node -> (the node it was reached from, the edge): one step toward the terminal."""
    reached: dict[str, str] = field(default_factory=dict)
    """Campaign id -> the member node where the search met it."""
    servers: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Network server -> (its child on the path, when the fork happened)."""
    truncated: bool = False


class CampaignBuilder:
    """Turns signals into campaigns over a :class:`GraphStore`."""

    def __init__(
        self,
        store: GraphStore,
        *,
        settings: InvestigationSettings,
        hubs: HubIndex,
        noise: NoiseFilter | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._hubs = hubs
        self._noise = noise or NoiseFilter()
        self._campaigns: dict[str, Campaign] = {}
        self._member_of: dict[str, str] = {}
        self._server_index: dict[str, dict[str, int]] = {}
        self._searched: dict[str, int] = {}
        self._aliases: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self.stats = CampaignStats()

    @property
    def campaigns(self) -> dict[str, Campaign]:
        return self._campaigns

    def campaign_of(self, node_id: str) -> Campaign | None:
        campaign_id = self._member_of.get(node_id)
        return None if campaign_id is None else self._campaigns.get(campaign_id)

    # ------------------------------------------------------------------ signals
    def add(self, signal: Alert) -> set[str]:
        """Place one signal; the ids of the campaigns it created or changed."""
        self.stats.signals += 1
        touched: set[str] = set()
        bound = signal.last_timestamp or signal.first_timestamp
        for entity in dict.fromkeys(signal.process_entity_ids):
            node = self._store.node(entity)
            if node is None:
                self.stats.terminals_unknown += 1
                continue
            self.stats.terminals += 1
            campaign = self._place(node, bound)
            self._record(campaign, entity, signal)
            touched.add(campaign.id)
        return touched

    def _record(self, campaign: Campaign, entity: str, signal: Alert) -> None:
        ids = campaign.terminals.setdefault(entity, [])
        if signal.id not in ids:
            ids.append(signal.id)
        if signal.id not in campaign.alerts:
            if len(campaign.alerts) < MAX_ALERTS_PER_CAMPAIGN:
                campaign.alerts[signal.id] = signal
            else:
                self.stats.alerts_dropped += 1
        campaign.tree.add(entity)
        self._member_of[entity] = campaign.id
        start = signal.first_timestamp or signal.last_timestamp
        campaign.first_ts = min(campaign.first_ts, start)
        campaign.last_ts = max(campaign.last_ts, signal.last_timestamp)
        campaign.touched_seq = next(self._seq)

    def _place(self, node: Node, bound: int) -> Campaign:
        """The campaign the terminal belongs to (searching when it may find more)."""
        current = self.campaign_of(node.id)
        if current is not None and self._searched.get(node.id, -1) >= bound:
            return current
        self._searched[node.id] = bound
        result = self._search(node, bound)
        if current is not None:
            result.reached.setdefault(current.id, node.id)
        campaign = self._join(node, result)
        self._join_server_siblings(campaign, result)
        return self._campaigns[self._resolve(campaign.id)]

    # ------------------------------------------------------------------ search
    def _search(self, start: Node, bound: int) -> SearchResult:
        began = time.perf_counter()
        settings = self._settings
        floor = bound - hours_to_ns(settings.lookback_hours, what="investigation.lookback_hours")
        result = SearchResult()
        best: dict[str, int] = {start.id: bound}
        heap: list[tuple[int, int, str, int]] = [(0, 0, start.id, bound)]
        order = itertools.count(1)
        visited = 0
        while heap:
            cost, _, node_id, node_bound = heapq.heappop(heap)
            if best.get(node_id) != node_bound:
                continue
            visited += 1
            if visited > settings.max_visited:
                result.truncated = True
                break
            at_endpoint = self._is_endpoint(node_id)
            for in_edge in self._store.in_edges(node_id):
                if in_edge.first_ts > node_bound or in_edge.last_ts < floor:
                    continue
                if at_endpoint and in_edge.action != CONNECTION:
                    continue  # another client's flow into a shared endpoint
                step = self._step(in_edge, node_bound, result)
                if step is None:
                    continue
                source, hop, edge = step
                next_bound = min(node_bound, edge.last_ts)
                if source.id not in result.preds and source.id != start.id:
                    result.preds[source.id] = (node_id, edge)
                owner = self._member_of.get(source.id)
                if owner is not None:
                    result.reached.setdefault(self._resolve(owner), source.id)
                    continue
                if cost + hop > settings.max_hops:
                    continue
                if next_bound > best.get(source.id, -1):
                    best[source.id] = next_bound
                    heapq.heappush(heap, (cost + hop, next(order), source.id, next_bound))
        self._count_search(result, visited, began)
        return result

    def _step(self, edge: Edge, bound: int, result: SearchResult) -> tuple[Node, int, Edge] | None:
        """The node a backward path reaches through ``edge``, the hop's cost and the edge
        taken, or ``None`` when the path may not continue there. Through a network server's
        fork the path goes on to the connection the server accepted just before (the one
        the child serves), never to the server's other clients."""
        source = self._store.node(edge.src)
        if source is None or self._noise.is_noise(source):
            return None
        if source.kind is NodeKind.FILE and self._is_leaf(source, bound):
            return None
        if source.kind is NodeKind.SOCKET and not source.ip:
            return None  # a local service's socket: its clients share nothing through it
        if self._hubs.is_hub(source):
            if edge.action == "fork" and self._hubs.is_server(source):
                served = self._served_connection(source, edge)
                if served is None or not self._client_seen(served[0]):
                    result.servers.setdefault(source.id, (edge.dst, edge.first_ts))
                return served
            return None
        return source, 2 if source.kind is NodeKind.SOCKET else 1, edge

    def _served_connection(self, server: Node, fork: Edge) -> tuple[Node, int, Edge] | None:
        """The client end of the last connection ``server`` accepted before ``fork`` (at most
        ``SERVED_WITHIN_NS`` earlier), the hop's cost and the accept edge; ``None`` when there
        is none or the end is a hub."""
        latest: Edge | None = None
        for edge in self._store.in_edges(server.id):
            if edge.action != "accept" or edge.first_ts > fork.first_ts:
                continue
            if fork.first_ts - edge.first_ts > SERVED_WITHIN_NS:
                continue
            if latest is None or edge.first_ts > latest.first_ts:
                latest = edge
        if latest is None:
            return None
        peer = self._store.node(latest.src)
        if peer is None or self._hubs.is_hub(peer):
            return None
        return peer, 2, latest

    def _client_seen(self, peer: Node) -> bool:
        """Whether the graph holds the process that opened this connection."""
        return any(edge.action == CONNECTION for edge in self._store.in_edges(peer.id))

    def _is_endpoint(self, node_id: str) -> bool:
        node = self._store.node(node_id)
        return node is not None and node.kind is NodeKind.SOCKET

    def _is_leaf(self, node: Node, bound: int) -> bool:
        return not any(edge.first_ts <= bound for edge in self._store.in_edges(node.id))

    def _count_search(self, result: SearchResult, visited: int, began: float) -> None:
        stats = self.stats
        stats.searches += 1
        stats.nodes_visited += visited
        stats.searches_truncated += int(result.truncated)
        stats.search_ms_max = max(stats.search_ms_max, (time.perf_counter() - began) * 1e3)

    # ------------------------------------------------------------------ joining
    def _join(self, terminal: Node, result: SearchResult) -> Campaign:
        reached = {self._resolve(cid): member for cid, member in result.reached.items()}
        if not reached:
            campaign = self._found(terminal)
        else:
            ordered = sorted(reached, key=self._age)
            campaign = self._campaigns[ordered[0]]
            for other in ordered[1:]:
                self._merge(campaign, self._campaigns[other])
            self.stats.joins += 1
            for member in reached.values():
                self._add_path(campaign, terminal.id, member, result)
        self._claim_region(campaign, result)
        for server, (child, ts) in result.servers.items():
            campaign.server_entries.setdefault(server, ts)
            self._add_spine(campaign, child, result)
        return campaign

    def _found(self, terminal: Node) -> Campaign:
        campaign = Campaign(
            id=f"c{next(self._ids)}",
            host_id=terminal.host,
            first_ts=terminal.first_ts,
            last_ts=terminal.last_ts,
            touched_seq=next(self._seq),
        )
        campaign.tree.add(terminal.id)
        self._campaigns[campaign.id] = campaign
        self._member_of[terminal.id] = campaign.id
        self.stats.campaigns_founded += 1
        self._evict()
        return campaign

    def _add_path(
        self, campaign: Campaign, terminal: str, member: str, result: SearchResult
    ) -> None:
        """Put the path terminal <- ... <- member, and member -> ... -> a tree node, in the
        campaign's tree."""
        self._add_spine(campaign, member, result)
        node = member
        seen: set[str] = set()
        while node not in campaign.tree and node in campaign.links and node not in seen:
            seen.add(node)
            nxt, edge = campaign.links[node]
            campaign.tree.add(node)
            campaign.tree_edges[edge.id] = edge
            node = nxt
        campaign.tree.add(member)
        campaign.tree.add(terminal)
        self._member_of[terminal] = campaign.id

    def _add_spine(self, campaign: Campaign, node: str, result: SearchResult) -> None:
        """The search path from ``node`` down to the terminal, into the tree."""
        seen: set[str] = set()
        while node in result.preds and node not in seen:
            seen.add(node)
            nxt, edge = result.preds[node]
            campaign.tree.add(node)
            campaign.tree_edges[edge.id] = edge
            self._member_of[node] = campaign.id
            node = nxt

    def _claim_region(self, campaign: Campaign, result: SearchResult) -> None:
        limit = self._settings.max_visited * 20
        for node, link in result.preds.items():
            if len(campaign.links) >= limit:
                break
            if node in self._member_of:
                continue
            campaign.links[node] = link
            self._member_of[node] = campaign.id

    def _join_server_siblings(self, campaign: Campaign, result: SearchResult) -> None:
        window = hours_to_ns(
            self._settings.server_siblings_hours, what="investigation.server_siblings_hours"
        )
        for server, (_child, ts) in result.servers.items():
            entries = self._server_index.setdefault(server, {})
            for other_id, other_ts in list(entries.items()):
                other = self._resolve(other_id)
                if other == campaign.id or other not in self._campaigns or window <= 0:
                    continue
                if abs(ts - other_ts) <= window:
                    older, newer = sorted((campaign.id, other), key=self._age)
                    self._merge(self._campaigns[older], self._campaigns[newer])
                    self.stats.server_sibling_merges += 1
                    campaign = self._campaigns[older]
            entries[campaign.id] = ts

    def _merge(self, keep: Campaign, gone: Campaign) -> None:
        if keep.id == gone.id:
            return
        for node, ids in gone.terminals.items():
            kept = keep.terminals.setdefault(node, [])
            kept.extend(i for i in ids if i not in kept)
        for alert_id, alert in gone.alerts.items():
            if len(keep.alerts) < MAX_ALERTS_PER_CAMPAIGN:
                keep.alerts.setdefault(alert_id, alert)
        keep.tree |= gone.tree
        keep.tree_edges.update(gone.tree_edges)
        for node, link in gone.links.items():
            keep.links.setdefault(node, link)
        for server, ts in gone.server_entries.items():
            keep.server_entries[server] = min(ts, keep.server_entries.get(server, ts))
        keep.first_ts = min(keep.first_ts, gone.first_ts)
        keep.last_ts = max(keep.last_ts, gone.last_ts)
        keep.merged.extend([gone.id, *gone.merged])
        keep.touched_seq = max(keep.touched_seq, gone.touched_seq)
        for node in gone.members():
            self._member_of[node] = keep.id
        del self._campaigns[gone.id]
        self._aliases[gone.id] = keep.id
        self.stats.merges += 1

    def _resolve(self, campaign_id: str) -> str:
        """The id a campaign now goes by (after merges)."""
        seen = 0
        while campaign_id in self._aliases and seen < 1_000:
            campaign_id = self._aliases[campaign_id]
            seen += 1
        return campaign_id

    def _age(self, campaign_id: str) -> int:
        return int(campaign_id[1:])

    # ------------------------------------------------------------------ bounds
    def _evict(self) -> None:
        """Drop the least recently active campaigns past the count, and any idle past the
        age limit (measured in data time against the newest campaign)."""
        settings = self._settings
        newest = max((c.last_ts for c in self._campaigns.values()), default=0)
        max_age = hours_to_ns(
            settings.max_campaign_age_hours, what="investigation.max_campaign_age_hours"
        )
        stale = [c.id for c in self._campaigns.values() if newest - c.last_ts > max_age]
        excess = len(self._campaigns) - len(stale) - settings.max_campaigns
        if excess > 0:
            ranked = sorted(
                (c for c in self._campaigns.values() if c.id not in stale),
                key=lambda c: c.touched_seq,
            )
            stale.extend(c.id for c in ranked[:excess])
        for campaign_id in stale:
            self._drop(campaign_id)

    def _drop(self, campaign_id: str) -> None:
        campaign = self._campaigns.pop(campaign_id)
        for node in campaign.members():
            if self._member_of.get(node) == campaign_id:
                del self._member_of[node]
                self._searched.pop(node, None)
        self.stats.campaigns_evicted += 1
