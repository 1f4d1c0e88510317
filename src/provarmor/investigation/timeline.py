"""The ordered timeline of an incident: one step per meaningful flow between the story's
nodes, per signal and per knowledge finding, grouped and in time order."""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.graph.logins import LOGIN
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.investigation.knowledge import Finding, program_name
from provarmor.model.alert import Alert
from provarmor.model.attack import load_attack_table
from provarmor.model.incident import Step

VERBS: dict[str, str] = {
    "fork": "started",
    "exec": "ran",
    "write": "wrote",
    "create": "created",
    "truncate": "truncated",
    "delete": "deleted",
    "rename": "renamed",
    "link": "linked",
    "chmod": "changed the mode of",
    "chown": "changed the owner of",
    "memfd_create": "created in memory",
    "connect": "connected to",
    "send": "sent data to",
    "accept": "accepted a connection from",
    "recv": "received data from",
    "open": "read",
    "read": "read",
    "ptrace": "attached to",
    "kill": "signalled",
    LOGIN: "accepted the",
}
FLOWS_INTO_PROCESS = frozenset({"exec", "accept", "recv", "open", "read", LOGIN})
PRIORITY_ALERT = 0
PRIORITY_FINDING = 1
PRIORITY_FLOW = 2


@dataclass(frozen=True, slots=True)
class _Ranked:
    priority: int
    step: Step


def build_steps(
    nodes: dict[str, Node],
    edges: list[Edge],
    *,
    alerts: list[Alert],
    findings: list[Finding],
    limit: int,
) -> tuple[list[Step], int]:
    """Steps in time order, at most ``limit`` (signals and findings kept first), and how
    many there were in all when some were cut (else 0)."""
    ranked = [_Ranked(PRIORITY_ALERT, _alert_step(a)) for a in alerts]
    ranked += [_Ranked(PRIORITY_FINDING, _finding_step(f)) for f in findings]
    ranked += [_Ranked(PRIORITY_FLOW, s) for s in _flow_steps(nodes, edges)]
    total = len(ranked)
    if total > limit:
        ranked = sorted(ranked, key=lambda r: (r.priority, r.step.timestamp))[:limit]
    steps = sorted((r.step for r in ranked), key=lambda s: (s.timestamp, s.subject, s.action))
    return steps, total if total > limit else 0


def _alert_step(alert: Alert) -> Step:
    subject = alert.process_entity_ids[0] if alert.process_entity_ids else ""
    return Step(
        timestamp=alert.first_timestamp,
        subject=subject,
        action="signal",
        text=f"{alert.detector} signal ({alert.level or 'unrated'}): {alert.rule_title}",
        techniques=alert.techniques,
        tactics=alert.tactics,
        alert_ids=(alert.id,),
        event_id=alert.event_ids[0] if alert.event_ids else "",
        count=alert.count,
    )


def _finding_step(finding: Finding) -> Step:
    table = load_attack_table()
    techniques = tuple(
        ref for ref in (table.technique_ref(t) for t in finding.techniques) if ref is not None
    )
    tactic_ids = dict.fromkeys(
        tactic
        for t in finding.techniques
        if (entry := table.technique(t)) is not None
        for tactic in entry.tactics[:1]
    )
    tactics = tuple(ref for ref in (table.tactic_ref(t) for t in tactic_ids) if ref is not None)
    return Step(
        timestamp=finding.timestamp,
        subject=finding.nodes[0],
        object=finding.nodes[-1] if len(finding.nodes) > 1 else "",
        action=f"pattern:{finding.pattern}",
        text=finding.text,
        techniques=techniques,
        tactics=tactics,
    )


def _flow_steps(nodes: dict[str, Node], edges: list[Edge]) -> list[Step]:
    """One step per (subject, action, object kind and directory) group of flows."""
    groups: dict[tuple[str, str, str], list[Edge]] = {}
    for edge in edges:
        if edge.action not in VERBS:
            continue
        into_process = edge.action in FLOWS_INTO_PROCESS
        subject, obj = (edge.dst, edge.src) if into_process else (edge.src, edge.dst)
        if edge.action in ("open", "read") and nodes[obj].kind is NodeKind.FILE:
            continue  # reads are shown only through findings (credential files)
        key = (subject, edge.action, obj if edge.action in ("fork", "exec") else _group(nodes[obj]))
        groups.setdefault(key, []).append(edge)
    steps = []
    for (subject, action, _), group in groups.items():
        first = min(group, key=lambda e: e.first_ts)
        into_process = action in FLOWS_INTO_PROCESS
        objects = [e.src if into_process else e.dst for e in group]
        steps.append(
            Step(
                timestamp=first.first_ts,
                subject=subject,
                object=objects[0],
                action=action,
                text=_flow_text(nodes, subject, action, objects),
                event_id=first.first_event,
                count=sum(e.count for e in group),
            )
        )
    return steps


def _group(node: Node) -> str:
    if node.kind is NodeKind.FILE:
        return "file:" + (node.path or node.label).rsplit("/", 1)[0]
    return f"{node.kind}:{node.ip}"


def _flow_text(nodes: dict[str, Node], subject: str, action: str, objects: list[str]) -> str:
    who = describe(nodes[subject])
    first = describe(nodes[objects[0]])
    more = f" and {len(objects) - 1} more" if len(objects) > 1 else ""
    return f"{who} {VERBS[action]} {first}{more}"


def describe(node: Node) -> str:
    """A short name for a node in a sentence."""
    if node.kind is NodeKind.PROCESS:
        name = program_name(node)
        command = node.command_line.strip()
        if command and len(command) > 60:
            command = command[:57] + "..."
        return f"{name} [{node.pid}]" + (f" ({command})" if command and command != name else "")
    return node.path or node.label
