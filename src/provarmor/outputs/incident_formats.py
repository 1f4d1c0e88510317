"""Incident formats: JSON, Graphviz DOT, a self-rendered SVG of the attack graph, and the
OCSF Incident Finding (class 2005). Pure functions: incident in, text or JSON-ready dict out.

OCSF attribute names follow the 1.3 Incident Finding class (category 2 Findings, class
2005, activity 1 Create / 2 Update; type_uid = class_uid * 100 + activity_id): severity_id,
status_id, priority_id, impact_id, desc, is_suspected_breach, start_time, end_time,
finding_info_list, attacks, and the ``incident`` profile in metadata.profiles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from html import escape as escape_html

import msgspec

from provarmor import __version__
from provarmor.model.display import dot_quote, printable
from provarmor.model.incident import Incident, IncidentNode, NodeRole
from provarmor.model.time_units import ns_to_ms

OCSF_VERSION = "1.3.0"
_SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_PRIORITY_ID = {"informational": 1, "low": 1, "medium": 2, "high": 3, "critical": 4}
_STATUS_ID = {"new": 1, "acknowledged": 2, "resolved": 4, "false_positive": 5}
_SHAPES = {"process": "box", "file": "note", "socket": "diamond"}
_COLOURS = {"process": "#dbe9f6", "file": "#fdf3d0", "socket": "#e3f3e0"}
_ROOT_COLOUR = "#f4b6b6"
_TERMINAL_COLOUR = "#f9d9b4"
SVG_COLUMN = 220
SVG_ROW = 46
SVG_BOX_W = 190
SVG_BOX_H = 30
SVG_LABEL = 28


def incident_json(incident: Incident) -> dict[str, object]:
    """The incident as plain JSON types (msgspec field names)."""
    result = msgspec.to_builtins(incident)
    assert isinstance(result, dict)
    return result


def _short(node: IncidentNode) -> str:
    text = node.label
    if node.kind == "process":
        text = f"{node.label.rsplit('/', 1)[-1]} [{node.pid}]"
    return text if len(text) <= SVG_LABEL else text[: SVG_LABEL - 3] + "..."


def _text(text: str) -> str:
    """SVG text: printable (XML 1.0 forbids most control characters), then XML-escaped."""
    return escape_html(printable(text))


def _fill(node: IncidentNode) -> str:
    if node.role is NodeRole.ROOT_CAUSE:
        return _ROOT_COLOUR
    if node.role is NodeRole.TERMINAL:
        return _TERMINAL_COLOUR
    return _COLOURS.get(node.kind, "#ffffff")


def incident_dot(incident: Incident) -> str:
    """Graphviz DOT: shapes by node kind, root cause red and bold, terminals orange."""
    lines = [f"digraph {dot_quote(incident.id)} {{", "  rankdir=LR;", "  node [style=filled];"]
    lines.append(f"  label={dot_quote(incident.title)};")
    for node in incident.nodes:
        attributes = [
            f"label={dot_quote(_short(node))}",
            f"shape={_SHAPES.get(node.kind, 'ellipse')}",
            f"fillcolor={dot_quote(_fill(node))}",
            f"tooltip={dot_quote(node.command_line or node.label)}",
        ]
        if node.role is NodeRole.ROOT_CAUSE:
            attributes += ["penwidth=3", 'color="#c00000"']
        lines.append(f"  {dot_quote(node.id)} [{', '.join(attributes)}];")
    for edge in incident.edges:
        label = edge.action + (f" x{edge.count}" if edge.count > 1 else "")
        lines.append(
            f"  {dot_quote(edge.src)} -> {dot_quote(edge.dst)} [label={dot_quote(label)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layers(incident: Incident) -> dict[str, int]:
    """Column of each node: its longest causal distance from a source, edges taken in time
    order (a simple layered layout; cycles are broken by time)."""
    layer = {node.id: 0 for node in incident.nodes}
    for edge in sorted(incident.edges, key=lambda e: e.first_ts):
        if edge.src in layer and edge.dst in layer and edge.src != edge.dst:
            layer[edge.dst] = max(layer[edge.dst], layer[edge.src] + 1)
    return layer


def incident_svg(incident: Incident) -> str:
    """An SVG drawing of the attack graph: columns by causal order, rows by time."""
    layer = _layers(incident)
    columns: dict[int, list[IncidentNode]] = defaultdict(list)
    for node in sorted(incident.nodes, key=lambda n: (n.first_ts, n.id)):
        columns[layer[node.id]].append(node)
    where: dict[str, tuple[int, int]] = {}
    for column, nodes in columns.items():
        for row, node in enumerate(nodes):
            where[node.id] = (20 + column * SVG_COLUMN, 50 + row * SVG_ROW)
    width = 40 + (max(columns, default=0) + 1) * SVG_COLUMN
    height = 80 + max((len(n) for n in columns.values()), default=1) * SVG_ROW
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{_text(incident.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        f'<text x="20" y="24" font-size="14" font-weight="bold">{_text(incident.title)}</text>',
    ]
    for edge in incident.edges:
        if edge.src not in where or edge.dst not in where:
            continue
        (x1, y1), (x2, y2) = where[edge.src], where[edge.dst]
        out.append(
            f'<line x1="{x1 + SVG_BOX_W}" y1="{y1 + SVG_BOX_H // 2}" x2="{x2}" '
            f'y2="{y2 + SVG_BOX_H // 2}" stroke="#555" marker-end="url(#arrow)">'
            f"<title>{_text(edge.action)}</title></line>"
        )
    for node in incident.nodes:
        x, y = where[node.id]
        stroke = (
            ' stroke="#c00000" stroke-width="3"'
            if node.role is NodeRole.ROOT_CAUSE
            else (' stroke="#555"')
        )
        radius = ' rx="8"' if node.kind == "process" else ""
        out.append(
            f"<g><title>{_text(node.command_line or node.label)}</title>"
            f'<rect x="{x}" y="{y}" width="{SVG_BOX_W}" height="{SVG_BOX_H}"{radius} '
            f'fill="{_fill(node)}"{stroke}/>'
            f'<text x="{x + 6}" y="{y + 19}">{_text(_short(node))}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def ocsf_incident_finding(incident: Incident) -> dict[str, object]:
    """OCSF 1.3 Incident Finding (category 2, class 2005); activity Create on version 1,
    Update after."""
    activity = 1 if incident.version == 1 else 2
    attacks = [
        {"technique": {"uid": ref.id, "name": ref.name}, "version": "18.1"}
        for ref in incident.techniques
    ] + [
        {"tactic": {"uid": ref.id, "name": ref.name}, "version": "18.1"} for ref in incident.tactics
    ]
    return {
        "category_uid": 2,
        "class_uid": 2005,
        "activity_id": activity,
        "type_uid": 200500 + activity,
        "time": ns_to_ms(incident.updated_ts),
        "start_time": ns_to_ms(incident.first_ts),
        "end_time": ns_to_ms(incident.last_ts),
        "severity_id": _SEVERITY_ID.get(incident.severity, 0),
        "severity": incident.severity.capitalize(),
        "priority_id": _PRIORITY_ID.get(incident.severity, 0),
        "impact_id": max(_PRIORITY_ID.get(incident.severity, 0), 1),
        "status_id": _STATUS_ID.get(str(incident.status), 99),
        "status": str(incident.status).capitalize(),
        "is_suspected_breach": incident.severity in ("high", "critical"),
        "message": incident.title,
        "desc": incident.summary,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["incident"],
            "product": {"name": "ProvArmor", "vendor_name": "ProvArmor", "version": __version__},
            "uid": f"{incident.id}/v{incident.version}",
            "correlation_uid": incident.id,
        },
        "finding_info_list": [
            {
                "uid": incident.id,
                "title": incident.title,
                "desc": incident.summary,
                "first_seen_time": ns_to_ms(incident.first_ts),
                "last_seen_time": ns_to_ms(incident.last_ts),
                "related_events": [{"uid": alert_id} for alert_id in incident.alert_ids],
            }
        ],
        "attacks": attacks,
        "device": {"uid": incident.host_id, "type_id": 0},
        "unmapped": {
            "root_cause": incident.root_cause,
            "score": incident.score,
            "impacted_files": list(incident.impacted_files),
            "contacted_endpoints": list(incident.contacted_endpoints),
            "context": list(incident.context),
            "version": incident.version,
        },
    }


INCIDENT_FORMATS: dict[str, Callable[[Incident], object]] = {
    "json": incident_json,
    "dot": incident_dot,
    "svg": incident_svg,
    "ocsf": ocsf_incident_finding,
}
"""The one list of incident formats, by name."""
