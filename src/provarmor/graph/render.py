"""Renderings of a trace: JSON-ready dicts, Graphviz DOT, and an indented text tree.

Pure functions; printing and file writing belong to the caller. The tree and DOT show host
data through :mod:`provarmor.model.display` (control characters escaped); JSON stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.graph.trace import Direction, TraceResult
from provarmor.model.display import dot_quote, printable
from provarmor.model.time_units import ns_to_iso

_SHAPES = {NodeKind.PROCESS: "box", NodeKind.FILE: "note", NodeKind.SOCKET: "diamond"}


def format_ts(ts: int) -> str:
    """ISO-8601 UTC with microseconds."""
    return ns_to_iso(ts)


def to_json(result: TraceResult) -> dict[str, object]:
    return {
        "start": result.start,
        "start_event": result.start_event,
        "direction": result.direction.value,
        "truncated": result.truncated,
        "hidden": dict(result.hidden),
        "nodes": [msgspec.to_builtins(node) for node in result.nodes.values()],
        "edges": [msgspec.to_builtins(edge) for edge in _ordered(result.edges.values())],
    }


def node_caption(node: Node) -> str:
    """One line naming the node, printable (safe on a terminal)."""
    if node.kind is NodeKind.PROCESS:
        line = node.command_line or node.label
        if len(line) > 80:
            line = line[:77] + "..."
        return printable(f"{line} [pid {node.pid}]")
    return printable(node.label)


def to_dot(result: TraceResult) -> str:
    lines = [f"digraph {dot_quote('provarmor ' + result.direction.value)} {{", "  rankdir=LR;"]
    for node in result.nodes.values():
        attributes = [f"label={dot_quote(node_caption(node))}", f"shape={_SHAPES[node.kind]}"]
        if node.id == result.start:
            attributes.append("style=bold color=red")
        lines.append(f"  {dot_quote(node.id)} [{' '.join(attributes)}];")
    for edge in _ordered(result.edges.values()):
        label = f"{edge.action} x{edge.count}" if edge.count > 1 else edge.action
        style = " style=dashed" if edge.incomplete else ""
        lines.append(
            f"  {dot_quote(edge.src)} -> {dot_quote(edge.dst)} "
            f"[label={dot_quote(label + ' ' + format_ts(edge.first_ts)[11:23])}{style}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_tree(result: TraceResult) -> list[str]:
    """An indented tree from the start node; a node met again is shown once, then referred
    to with ``(see above)``."""
    backward = result.direction is Direction.BACKWARD
    children: dict[str, list[Edge]] = {}
    for edge in _ordered(result.edges.values()):
        parent = edge.dst if backward else edge.src
        children.setdefault(parent, []).append(edge)
    start = result.nodes.get(result.start)
    if start is None:
        return []
    lines = [f"{start.kind.value}: {node_caption(start)}"]
    shown = {result.start}
    stack: list[tuple[Edge, int]] = [(edge, 1) for edge in reversed(children.get(result.start, []))]
    while stack:
        edge, depth = stack.pop()
        other_id = edge.src if backward else edge.dst
        other = result.nodes[other_id]
        arrow = "<-" if backward else "->"
        count = f" x{edge.count}" if edge.count > 1 else ""
        mark = " [incomplete]" if edge.incomplete else ""
        seen = other_id in shown
        lines.append(
            f"{'  ' * depth}{arrow} {edge.action}{count}{mark} @ {format_ts(edge.first_ts)} "
            f"{other.kind.value}: {node_caption(other)}{' (see above)' if seen else ''}"
        )
        if not seen:
            shown.add(other_id)
            stack.extend((child, depth + 1) for child in reversed(children.get(other_id, [])))
    return lines


def _ordered(edges: Iterable[Edge]) -> list[Edge]:
    return sorted(edges, key=lambda edge: (edge.first_ts, edge.id))
