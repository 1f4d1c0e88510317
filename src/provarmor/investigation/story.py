"""The attack story of a campaign: its concise graph, root cause, impact, timeline,
techniques and a summary written from templates.

* Root cause: from each terminal, walk back through the process ancestry (and, when the
  program was written by another process, through that writer) until the parent is a hub
  or unknown; the entry point of the earliest terminal is the root cause. Below a hub, a
  process that accepted a login (:mod:`provarmor.graph.logins`) steps back to that login,
  and a login among the entry points is the root cause before any other (the failed
  attempts that came before it are counted on it).
* Graph: terminals and the campaign's connecting paths, then a forward, time-respecting
  expansion from the entry points (their descendants first, then the files they wrote,
  programs they dropped and ran, endpoints they contacted, credential files they read),
  without noise files, up to ``max_incident_nodes``; what was cut is reported. The
  expansion follows only what the attack's processes did after they started: forks (not
  processes they merely signalled or traced), and it shows a hub it reaches (a server the
  attack started, a shell that ran a dropped file) without taking in the hub's other
  children.
* Techniques: the signals' and the knowledge layer's (:mod:`.knowledge`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from provarmor.graph.builder import CONNECTION
from provarmor.graph.logins import LOGIN
from provarmor.graph.noise import NoiseFilter
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.graph.store import GraphStore
from provarmor.investigation.campaigns import Campaign
from provarmor.investigation.hubs import HubIndex
from provarmor.investigation.knowledge import (
    WRITES,
    Finding,
    GraphView,
    find_techniques,
    is_contacted_endpoint,
    is_sensitive_path,
    program_name,
)
from provarmor.investigation.settings import InvestigationSettings
from provarmor.investigation.signal_context import context_notes, context_sentence
from provarmor.investigation.summary import summarize, title_of
from provarmor.investigation.timeline import build_steps
from provarmor.model.alert import Alert, SignalKind
from provarmor.model.attack import AttackRef, load_attack_table
from provarmor.model.incident import IncidentEdge, IncidentNode, NodeRole, Step

MAX_WALK = 64
EXPANSION_FACTOR = 20
FORWARD_OUT = frozenset(WRITES | {"chmod", "chown", "delete", "memfd_create", "connect", "send"})


@dataclass(slots=True, kw_only=True)
class Story:
    root_cause: str
    entries: list[str]
    nodes: list[IncidentNode]
    edges: list[IncidentEdge]
    steps: list[Step]
    techniques: list[AttackRef]
    tactics: list[AttackRef]
    findings: list[Finding]
    impacted_files: list[str]
    contacted_endpoints: list[str]
    truncated: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    summary: str = ""
    title: str = ""


@dataclass(slots=True, kw_only=True)
class StoryContext:
    store: GraphStore
    hubs: HubIndex
    settings: InvestigationSettings
    noise: NoiseFilter


def build_story(campaign: Campaign, *, context: StoryContext) -> Story:
    """The story of ``campaign`` as the graph holds it now."""
    store = context.store
    alerts = sorted(campaign.alerts.values(), key=lambda a: (a.first_timestamp, a.id))
    ordered = _terminals_in_time(campaign, alerts)
    entries = list(dict.fromkeys(entry_point(store, t, hubs=context.hubs) for t in ordered))
    root = _root_cause(store, entries)
    # the tree is a set: sorted, so a story is the same in every process (hash seeds differ)
    must = list(dict.fromkeys([root, *ordered, *sorted(campaign.tree)]))
    chosen, truncated = _select_nodes(campaign, entries, must, context=context)
    context_nodes = _server_context(store, root, context.hubs)
    view_edges = _edges_between(store, chosen | context_nodes)
    servers = {n for n in context_nodes if context.hubs.is_server(context_nodes[n])}
    findings = find_techniques(
        GraphView(nodes=chosen | context_nodes, edges=view_edges, servers=servers)
    )
    edges = [e for e in view_edges if e.src in chosen and e.dst in chosen]
    context_edges = [e for e in view_edges if e.src in context_nodes]
    return _assemble(
        campaign,
        alerts=alerts,
        root=root,
        entries=entries,
        chosen=chosen,
        edges=edges,
        findings=findings,
        truncated=truncated,
        settings=context.settings,
        context_nodes=context_nodes,
        context_edges=context_edges,
    )


def _terminals_in_time(campaign: Campaign, alerts: list[Alert]) -> list[str]:
    seen: dict[str, None] = {}
    for alert in alerts:
        for entity in alert.process_entity_ids:
            if entity in campaign.terminals:
                seen.setdefault(entity)
    seen.update(dict.fromkeys(campaign.terminals))
    return list(seen)


def _root_cause(store: GraphStore, entries: list[str]) -> str:
    """The first login among the entry points (the failed attempts before it are part of
    its story), else the entry point of the earliest terminal."""
    for entry in entries:
        if any(edge.action == LOGIN for edge in store.out_edges(entry)):
            return entry
    return entries[0] if entries else ""


def entry_point(store: GraphStore, node_id: str, *, hubs: HubIndex) -> str:
    """The first non-hub process on the way back from ``node_id``."""
    current = node_id
    seen = {current}
    for _ in range(MAX_WALK):
        following = _cause_of(store, current, hubs=hubs)
        if following is None or following in seen:
            break
        seen.add(following)
        current = following
    return current


def _cause_of(store: GraphStore, node_id: str, *, hubs: HubIndex) -> str | None:
    """The non-hub process one step back: the writer of the program run, else the parent;
    or the login that started the process (:mod:`provarmor.graph.logins`)."""
    node = store.node(node_id)
    if node is None or node.kind is not NodeKind.PROCESS:
        return None
    for edge in store.in_edges(node_id):
        if edge.action != "exec":
            continue
        for write in store.in_edges(edge.src):
            writer = store.node(write.src)
            if (
                write.action in WRITES
                and write.first_ts <= edge.first_ts
                and writer is not None
                and writer.kind is NodeKind.PROCESS
                and writer.id != node_id
                and not hubs.is_hub(writer)
            ):
                return writer.id
    parent = store.node(node.parent) if node.parent else None
    if parent is None or parent.kind is not NodeKind.PROCESS or hubs.is_hub(parent):
        return next((e.src for e in store.in_edges(node_id) if e.action == LOGIN), None)
    return parent.id


def _server_context(store: GraphStore, root: str, hubs: HubIndex) -> dict[str, Node]:
    """The hub above the root cause and where it listens: context for the knowledge layer
    and the summary, not part of the attack graph."""
    node = store.node(root) if root else None
    parent = store.node(node.parent) if node is not None and node.parent else None
    if parent is None or not hubs.is_hub(parent):
        return {}
    found = {parent.id: parent}
    for edge in store.out_edges(parent.id):
        if edge.action in ("listen", "bind"):
            listening = store.node(edge.dst)
            if listening is not None:
                found[listening.id] = listening
                break
    return found


def _select_nodes(
    campaign: Campaign, entries: list[str], must: list[str], *, context: StoryContext
) -> tuple[dict[str, Node], list[str]]:
    """Required nodes, then the forward expansion's processes, then its other nodes."""
    cap = context.settings.max_incident_nodes
    processes, others, cut = _expand(entries, context=context, limit=cap * EXPANSION_FACTOR)
    chosen: dict[str, Node] = {}
    truncated = []
    wanted = [node_id for node_id in [*must, *processes, *others] if node_id]
    found = context.store.nodes_of(wanted)
    for node_id in wanted:
        if node_id in chosen:
            continue
        node = found.get(node_id)
        if node is None:
            continue
        if len(chosen) >= cap:
            truncated.append(f"nodes: {cap} kept, more were left out")
            break
        chosen[node_id] = node
    if cut:
        truncated.append(f"forward expansion stopped after {cap * EXPANSION_FACTOR} nodes")
    del campaign
    return chosen, truncated


def _expand(
    entries: Iterable[str], *, context: StoryContext, limit: int
) -> tuple[list[str], list[str], bool]:
    """Forward, time-respecting: processes (descendants, dropped programs run) in order,
    and the files and endpoints they acted on."""
    store, noise, hubs = context.store, context.noise, context.hubs
    processes: dict[str, int] = {}
    others: dict[str, None] = {}
    sensitive: dict[str, bool] = {}
    queue: deque[tuple[str, int]] = deque()
    entries = list(entries)
    found = store.nodes_of(entries)
    for entry in entries:
        node = found.get(entry)
        if node is not None:
            processes.setdefault(entry, node.first_ts)
            queue.append((entry, node.first_ts))
    while queue:
        if len(processes) + len(others) >= limit:
            return list(processes), list(others), True
        node_id, bound = queue.popleft()
        edges = [edge for edge in store.out_edges(node_id) if edge.last_ts >= bound]
        targets = store.nodes_of(edge.dst for edge in edges)
        for edge in edges:
            target = targets.get(edge.dst)
            if target is None or noise.is_noise(target):
                continue
            if edge.action in ("fork", LOGIN, "ptrace", "kill") and target.kind is NodeKind.PROCESS:
                _take_process(edge, target, bound, processes=processes, queue=queue, hubs=hubs)
            elif edge.action in FORWARD_OUT:
                others.setdefault(edge.dst)
                if target.kind is NodeKind.FILE:
                    _dropped_runs(store, edge, processes, queue, hubs=hubs)
        _sensitive_reads(store, node_id, others, sensitive=sensitive)
    return list(processes), list(others), False


def _take_process(  # noqa: PLR0913  (one step of the expansion's state)
    edge: Edge,
    target: Node,
    bound: int,
    *,
    processes: dict[str, int],
    queue: deque[tuple[str, int]],
    hubs: HubIndex,
) -> None:
    """A process the attack started (followed further unless a hub) or signalled or traced
    (shown only)."""
    if edge.dst in processes:
        return
    processes[edge.dst] = edge.first_ts
    if edge.action in ("fork", LOGIN) and not hubs.is_hub(target):
        queue.append((edge.dst, max(bound, edge.first_ts)))


def _dropped_runs(
    store: GraphStore,
    write: Edge,
    processes: dict[str, int],
    queue: deque[tuple[str, int]],
    *,
    hubs: HubIndex,
) -> None:
    """Processes that executed a file after an attack process wrote it (a hub among them,
    such as a shell that merely loaded it, is shown but not followed)."""
    for edge in store.out_edges(write.dst):
        ran = edge.action in ("exec", "mmap_exec") and edge.last_ts >= write.first_ts
        if ran and edge.dst not in processes:
            processes[edge.dst] = edge.first_ts
            runner = store.node(edge.dst)
            if runner is not None and not hubs.is_hub(runner):
                queue.append((edge.dst, edge.first_ts))


def _sensitive_reads(
    store: GraphStore, node_id: str, others: dict[str, None], *, sensitive: dict[str, bool]
) -> None:
    """Add the sensitive files ``node_id`` read to ``others``; ``sensitive`` remembers each
    file's verdict for the rest of the expansion (processes read the same files)."""
    reads = [edge.src for edge in store.in_edges(node_id) if edge.action in ("open", "read")]
    sources = store.nodes_of(src for src in reads if src not in sensitive)
    for src in reads:
        verdict = sensitive.get(src)
        if verdict is None:
            source = sources.get(src)
            verdict = source is not None and is_sensitive_path(source.path or source.label)
            sensitive[src] = verdict
        if verdict:
            others.setdefault(src)


def _edges_between(store: GraphStore, chosen: dict[str, Node]) -> list[Edge]:
    edges: dict[int, Edge] = {}
    for node_id in chosen:
        for edge in store.out_edges(node_id):
            if edge.dst in chosen:
                edges[edge.id] = edge
    return sorted(edges.values(), key=lambda e: (e.first_ts, e.id))


def _assemble(  # noqa: PLR0913  (the parts of one story)
    campaign: Campaign,
    *,
    alerts: list[Alert],
    root: str,
    entries: list[str],
    chosen: dict[str, Node],
    edges: list[Edge],
    findings: list[Finding],
    truncated: list[str],
    settings: InvestigationSettings,
    context_nodes: dict[str, Node],
    context_edges: list[Edge],
) -> Story:
    techniques, tactics = _attack_refs(alerts, findings)
    nodes = [_incident_node(node, campaign, root=root, alerts=alerts) for node in chosen.values()]
    steps, cut_steps = build_steps(
        chosen, edges, alerts=alerts, findings=findings, limit=settings.max_incident_steps
    )
    if cut_steps:
        truncated.append(f"steps: {settings.max_incident_steps} kept of {cut_steps}")
    files = [
        n.path or n.label
        for n in chosen.values()
        if n.kind is NodeKind.FILE and _was_changed(n.id, edges)
    ]
    own_ends = {e.dst for e in edges if e.action == CONNECTION}
    own_ends |= {e.src for e in edges if e.action == LOGIN}  # a login is not contacted
    endpoints = [
        n.label for n in chosen.values() if is_contacted_endpoint(n) and n.id not in own_ends
    ]
    story = Story(
        root_cause=root,
        entries=entries,
        nodes=nodes,
        edges=[_incident_edge(e) for e in edges],
        steps=steps,
        techniques=techniques,
        tactics=tactics,
        findings=findings,
        impacted_files=files,
        contacted_endpoints=endpoints,
        truncated=truncated,
    )
    shown = [_incident_edge(e) for e in context_edges]
    story.summary = summarize(
        chosen | context_nodes,
        [*story.edges, *shown],
        root=root,
        findings=findings,
        steps=len(steps),
        tactics=tactics,
    )
    context = context_sentence(alerts)
    if context:
        story.summary += " " + context
    story.context = context_notes(alerts)
    story.title = title_of(chosen, alerts, root=root)
    return story


def _incident_edge(edge: Edge) -> IncidentEdge:
    return IncidentEdge(
        src=edge.src,
        dst=edge.dst,
        action=edge.action,
        first_ts=edge.first_ts,
        last_ts=edge.last_ts,
        count=edge.count,
    )


def _was_changed(node_id: str, edges: list[Edge]) -> bool:
    return any(e.dst == node_id and e.action in FORWARD_OUT for e in edges)


def _incident_node(
    node: Node, campaign: Campaign, *, root: str, alerts: list[Alert]
) -> IncidentNode:
    alert_ids = tuple(campaign.terminals.get(node.id, ()))
    anomaly = max(
        (a.score for a in alerts if a.kind is SignalKind.SCORE and node.id in a.process_entity_ids),
        default=0.0,
    )
    if node.id == root:
        role = NodeRole.ROOT_CAUSE
    elif alert_ids:
        role = NodeRole.TERMINAL
    elif node.kind is NodeKind.PROCESS:
        role = NodeRole.CONNECTOR
    else:
        role = NodeRole.IMPACTED
    return IncidentNode(
        id=node.id,
        kind=str(node.kind),
        label=node.label,
        role=role,
        pid=node.pid,
        executable=node.executable,
        command_line=node.command_line,
        path=node.path,
        ip=node.ip,
        port=node.port,
        user=node.user,
        first_ts=node.first_ts,
        last_ts=node.last_ts,
        alert_ids=alert_ids,
        anomaly_score=anomaly,
    )


def _attack_refs(
    alerts: list[Alert], findings: list[Finding]
) -> tuple[list[AttackRef], list[AttackRef]]:
    table = load_attack_table()
    techniques: dict[str, AttackRef] = {}
    tactics: dict[str, AttackRef] = {}
    for alert in alerts:
        for ref in alert.techniques:
            techniques.setdefault(ref.id, ref)
        for ref in alert.tactics:
            tactics.setdefault(ref.id, table.current_tactic_ref(ref.id) or ref)
    for finding in findings:
        for technique_id in finding.techniques:
            found = table.technique_ref(technique_id)
            entry = table.technique(technique_id)
            if found is None or entry is None:
                continue
            techniques.setdefault(found.id, found)
            for tactic_id in entry.tactics[:1]:
                tactic = table.current_tactic_ref(tactic_id)
                if tactic is not None:
                    tactics.setdefault(tactic.id, tactic)
    return list(techniques.values()), list(tactics.values())


__all__ = ["Story", "StoryContext", "build_story", "entry_point", "program_name"]
