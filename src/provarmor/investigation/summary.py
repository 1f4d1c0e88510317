"""Template-based title and summary of an incident, written from its graph (no external
service): who the entry point was and under what, what it downloaded, ran, changed and
contacted, and how many steps over which tactics."""

from __future__ import annotations

from collections.abc import Sequence

from provarmor.graph.records import Node, NodeKind
from provarmor.investigation.knowledge import Finding, program_known, program_name
from provarmor.model.alert import Alert
from provarmor.model.attack import AttackRef
from provarmor.model.incident import IncidentEdge

LEVEL_ORDER = ("informational", "low", "medium", "high", "critical")
MAX_LISTED = 3


def title_of(nodes: dict[str, Node], alerts: Sequence[Alert], *, root: str) -> str:
    """``<strongest rule> (+N signals) from <root program>``."""
    strongest = max(
        alerts, key=lambda a: (_rank(a.level), a.score, -a.first_timestamp), default=None
    )
    head = strongest.rule_title if strongest is not None else "Related activity"
    extra = len(alerts) - 1
    root_node = nodes.get(root)
    origin = f" from {program_name(root_node)}" if root_node is not None else ""
    return f"{head}{f' (+{extra} signals)' if extra > 0 else ''}{origin}"


def summarize(  # noqa: PLR0913  (the facts a summary reads)
    nodes: dict[str, Node],
    edges: Sequence[IncidentEdge],
    *,
    root: str,
    findings: Sequence[Finding],
    steps: int,
    tactics: Sequence[AttackRef],
) -> str:
    parts = [_origin(nodes, edges, root)]
    dropped = [f for f in findings if f.pattern == "written-then-executed"]
    for finding in dropped[:MAX_LISTED]:
        parts.append(finding.text)
    changed = _targets(nodes, edges, ("write", "create", "chmod", "delete", "truncate"))
    if changed:
        parts.append("it changed " + _listing(changed))
    contacted = [t for t in _targets(nodes, edges, ("connect", "send")) if _is_remote(t, nodes)]
    if contacted:
        parts.append("it contacted " + _listing(contacted))
    processes = sum(1 for n in nodes.values() if n.kind is NodeKind.PROCESS)
    names = ", ".join(t.name.lower().replace(" ", "-") for t in tactics) or "no known tactic"
    parts.append(f"{processes} processes, {steps} steps over {len(tactics)} tactics: {names}")
    text = "; ".join(part for part in parts if part) + "."
    return text[0].upper() + text[1:]


def _origin(nodes: dict[str, Node], edges: Sequence[IncidentEdge], root: str) -> str:
    node = nodes.get(root)
    if node is None:
        return "the entry point is unknown"
    if node.kind is not NodeKind.PROCESS:  # a login (provarmor.graph.logins)
        accepted = [nodes[e.dst] for e in edges if e.src == root and e.dst in nodes]
        by = f", accepted by {program_name(accepted[0])} [{accepted[0].pid}]" if accepted else ""
        return f"the attack entered through the {node.label}{by}"
    if not program_known(node):
        return f"the attack entered through a process whose program is unknown (pid {node.pid})"
    what = f"{program_name(node)} [{node.pid}]"
    if node.command_line:
        command = (
            node.command_line if len(node.command_line) <= 80 else node.command_line[:77] + "..."
        )
        what += f" ({command})"
    parent = nodes.get(node.parent) if node.parent else None
    if parent is None:
        return f"the attack entered through {what}"
    listening = [
        nodes[e.dst].label.removeprefix("listen ")
        for e in edges
        if e.src == parent.id and e.action in ("listen", "bind") and e.dst in nodes
    ]
    serving = f" (server on {listening[0]})" if listening else ""
    return f"{what}, started by {program_name(parent)}{serving}, is the entry point"


def _targets(
    nodes: dict[str, Node], edges: Sequence[IncidentEdge], actions: tuple[str, ...]
) -> list[str]:
    found = dict.fromkeys(
        nodes[e.dst].path or nodes[e.dst].label
        for e in edges
        if e.action in actions and e.dst in nodes and nodes[e.dst].kind is not NodeKind.PROCESS
    )
    return list(found)


def _is_remote(label: str, nodes: dict[str, Node]) -> bool:
    """An ``ip:port`` endpoint other than a wildcard or DNS."""
    host, _, port = label.rpartition(":")
    return bool(host) and port.isdigit() and port not in ("0", "53") and not host.startswith("0.")


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _rank(level: str) -> int:
    return LEVEL_ORDER.index(level) if level in LEVEL_ORDER else 1
