"""The incident: an attack story built from a campaign of related signals.

An incident is what an analyst opens: a concise attack graph (processes, files and remote
endpoints, with the information flows between them), the root cause (the entry point of
the attack), what it touched (files written, endpoints contacted), an ordered timeline of
steps, the ATT&CK techniques and tactics it shows, a severity and a short summary.

Records are immutable; the investigation layer makes a new one, with ``version`` one
higher and the same ``id``, each time new signals extend the campaign behind it. Times are
nanoseconds since the epoch, as everywhere in the model.
"""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct

from provarmor.model.attack import AttackRef


class NodeRole(StrEnum):
    """Why a node is in the incident graph."""

    ROOT_CAUSE = "root_cause"
    """The entry point: the first non-hub process on the way back from the signals."""
    TERMINAL = "terminal"
    """A process a signal (rule or anomaly alert) named."""
    CONNECTOR = "connector"
    """On a causal path between terminals, or a descendant of the root cause."""
    IMPACTED = "impacted"
    """A file written or a remote endpoint contacted by the attack's processes."""


class IncidentStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"
    """An analyst marked it benign (and proposed exceptions for what raised it)."""


class IncidentNode(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One entity of the attack graph (a copy of the graph node's fields that matter)."""

    id: str
    kind: str
    """``process``, ``file`` or ``socket`` (as :class:`provarmor.graph.records.NodeKind`)."""
    label: str
    role: NodeRole = NodeRole.CONNECTOR
    pid: int = 0
    executable: str = ""
    command_line: str = ""
    path: str = ""
    ip: str = ""
    port: int = 0
    user: str = ""
    first_ts: int = 0
    last_ts: int = 0
    alert_ids: tuple[str, ...] = ()
    anomaly_score: float = 0.0
    """The highest anomaly score (score / threshold) a signal gave this process, else 0."""


class IncidentEdge(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Information flowing from ``src`` to ``dst`` (graph edge semantics)."""

    src: str
    dst: str
    action: str
    first_ts: int
    last_ts: int
    count: int = 1


class Step(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of the timeline: subject did action to object (or a signal fired)."""

    timestamp: int
    subject: str
    """Node id of the acting process."""
    action: str
    text: str
    object: str = ""
    """Node id of the thing acted upon (a child process, a file, an endpoint)."""
    techniques: tuple[AttackRef, ...] = ()
    tactics: tuple[AttackRef, ...] = ()
    alert_ids: tuple[str, ...] = ()
    event_id: str = ""
    count: int = 1
    """How many similar actions the step stands for (grouped)."""


class Incident(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An attack story. ``id`` stays the same across updates; ``version`` grows by one on
    each."""

    id: str
    campaign_id: str
    host_id: str
    title: str
    summary: str
    severity: str
    """Sigma level name: ``low``, ``medium``, ``high``, ``critical``."""
    score: float
    first_ts: int
    last_ts: int
    updated_ts: int
    """Data time of the newest signal that changed the incident."""
    root_cause: str
    """Node id of the entry point (empty when it could not be found)."""
    status: IncidentStatus = IncidentStatus.NEW
    version: int = 1
    nodes: tuple[IncidentNode, ...] = ()
    edges: tuple[IncidentEdge, ...] = ()
    steps: tuple[Step, ...] = ()
    techniques: tuple[AttackRef, ...] = ()
    tactics: tuple[AttackRef, ...] = ()
    alert_ids: tuple[str, ...] = ()
    impacted_files: tuple[str, ...] = ()
    contacted_endpoints: tuple[str, ...] = ()
    merged_ids: tuple[str, ...] = ()
    """Ids of incidents this one absorbed when their campaigns met."""
    context: tuple[str, ...] = ()
    """Why lineage context kept or lowered each signal (one line per rule, effect and
    reason): ``Password hash file read ...: kept high (raising context): network-facing
    server's child: python3 web.py -> sh -> cat (...)``."""
    truncated: tuple[str, ...] = ()
    """What was cut to keep the story concise (``"nodes: 40 of 140 kept"`` ...)."""

    def node(self, node_id: str) -> IncidentNode | None:
        for node in self.nodes:
            if node.id == node_id:
                return node
        return None
