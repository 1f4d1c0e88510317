"""Containment of a lab run whose recording agent responded to its own incidents
(``provarmor lab run --response``): scored from the dataset's audit trail
(``actions.jsonl``), its labels and its recorded events. Labels are read here only; the
responder never saw them.

* **containment**: the first action that took effect (outcome ``done``) on an attacker
  entity: one of the attacker's processes (kill, suspend), a file it wrote (quarantine,
  revert_file) or an endpoint it reached (block). Its time is the action's result record
  (the action had finished: a killed tree is gone);
* **incident**: the first action the responder was asked for for the incident whose action
  contained the run (its first ``proposed`` record; in a run nothing contained, for any
  incident): the moment the agent's own analysis handed that incident to the policy;
* **attack -> containment**, **incident -> containment**, **attack -> incident**: from the
  first recorded event of an attacker process;
* **attacker processes after containment**: attacker processes with a recorded event other
  than their exit after containment (survivors, and any the attacker started again);
* **attacker connections after containment**: connects and sends by any process to the
  attacker's endpoints the lab ran (C2, sinks, DNS sink, the second host's sshd);
* **actions on non-attack processes**: process actions (done, failed or dry-run) whose
  target is not one of the attacker's processes (the lab's own servers included): must be 0;
* **firewall**: ``block`` and ``isolate`` actions that took effect; **connections after the
  firewall**: connects and sends to an attacker endpoint after a block of that endpoint (of
  its address, or address and port) or after an isolation took effect; **blocks of
  non-attack endpoints**: blocks (done, failed or dry-run) of an endpoint the attack never
  reached: must be 0; likewise **file actions on non-attack files** (a quarantine or revert
  of a file the attack did not write).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provarmor.evaluation.dataset import ACTIONS_FILE, Dataset
from provarmor.evaluation.labels import EGRESS_ACTIONS
from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.model.time_units import ns_to_seconds
from provarmor.response.audit import AuditRecord, Phase, read_audit
from provarmor.response.records import (
    ActionKind,
    FileTarget,
    NetworkTarget,
    Outcome,
    PersistenceTarget,
    ProcessTarget,
)

FIREWALL = frozenset({ActionKind.BLOCK, ActionKind.ISOLATE})
CLIENT_ROLE = "attacker-client"
"""Ground-truth endpoints of this role are the attacker's own client ports on the victim."""
ACTED = frozenset({Outcome.DONE, Outcome.FAILED, Outcome.DRY_RUN})
"""Outcomes that touched (or, in dry-run, would have touched) a target."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSummary:
    """One action's result, as the report lists it."""

    time_ns: int
    kind: str
    target: str
    outcome: str
    attacker: bool
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainmentScore:
    mode: str
    """The policy's mode in the run (``enforce``, ``dry-run``; several: comma-separated)."""
    actions: tuple[ActionSummary, ...]
    unreadable_lines: tuple[str, ...]
    """file:line and reason of every damaged line of the trail (the rest is scored)."""
    contained: bool
    attack_to_incident_s: float | None
    incident_to_containment_s: float | None
    attack_to_containment_s: float | None
    attacker_processes_after: tuple[str, ...] | None
    """``entity id (program)`` of attacker processes active after containment (``None``
    when nothing contained the run, as for the connections)."""
    attacker_connections_after: int | None
    non_attack_process_actions: int
    firewall_actions: int = 0
    """``block`` and ``isolate`` actions done."""
    connections_after_firewall: int | None = None
    """``None`` when no firewall action took effect."""
    non_attack_blocks: int = 0
    non_attack_file_actions: int = 0
    """Quarantines (done, failed or dry-run) of files the attack did not write."""


@dataclass(slots=True)
class ContainmentTracker:
    """Sees every recorded event once (beside the analysis) and keeps what the score needs."""

    attackers: frozenset[str]
    """The labelled attacker processes (the lab's infrastructure is taken out at the end)."""
    endpoints: frozenset[str]
    first_ns: dict[str, int] = field(default_factory=dict)
    last_active_ns: dict[str, int] = field(default_factory=dict)
    programs: dict[str, str] = field(default_factory=dict)
    egress: list[tuple[int, str]] = field(default_factory=list)
    """(time, ``ip:port``) of every connect or send to an attacker endpoint."""

    def see(self, event: Event) -> None:
        process = event.process
        entity = process.entity_id
        timestamp = event.timestamp
        if entity in self.attackers:
            if timestamp < self.first_ns.get(entity, timestamp + 1):
                self.first_ns[entity] = timestamp
            if event.event.action is not Action.EXIT:
                self.last_active_ns[entity] = max(self.last_active_ns.get(entity, 0), timestamp)
                self.programs[entity] = process.executable or process.name
        destination = event.destination
        if (
            event.event.action in EGRESS_ACTIONS
            and destination is not None
            and f"{destination.ip}:{destination.port}" in self.endpoints
        ):
            self.egress.append((timestamp, f"{destination.ip}:{destination.port}"))


def attacker_endpoints(dataset: Dataset) -> frozenset[str]:
    """``ip:port`` of the attacker's side the lab ran (never the attacker's client ports)."""
    return frozenset(
        f"{ref.ip}:{ref.port}" for ref in dataset.truth.endpoints if ref.role != CLIENT_ROLE
    )


def tracker_for(dataset: Dataset) -> ContainmentTracker | None:
    """A tracker when the dataset has an audit trail (``None``: no response in the run)."""
    if not (dataset.path / ACTIONS_FILE).exists():
        return None
    return ContainmentTracker(
        attackers=frozenset(dataset.labels.processes), endpoints=attacker_endpoints(dataset)
    )


def _on_attacker(record: AuditRecord, dataset: Dataset, malicious: set[str]) -> bool:
    target = record.request.target
    match target:
        case ProcessTarget():
            return target.entity_id in malicious
        case FileTarget() | PersistenceTarget():
            return target.path in dataset.labels.files
        case NetworkTarget():
            reached = set(dataset.labels.endpoints) | attacker_endpoints(dataset)
            if target.port:
                return f"{target.ip}:{target.port}" in reached
            return any(endpoint.rpartition(":")[0] == target.ip for endpoint in reached)
        case _:
            return False


def _describe(record: AuditRecord) -> str:
    target = record.request.target
    match target:
        case ProcessTarget():
            return f"pid {target.pid} {target.executable or target.entity_id}"
        case FileTarget() | PersistenceTarget():
            return target.path
        case NetworkTarget():
            return f"{target.ip}:{target.port}"
        case _:
            return type(target).__name__


def _seconds(start: int | None, end: int | None) -> float | None:
    if start is None or end is None:
        return None
    return round(ns_to_seconds(end - start), 3)


def score_containment(
    dataset: Dataset, tracker: ContainmentTracker, *, malicious: set[str]
) -> ContainmentScore:
    """The run's containment. ``malicious``: the attacker processes without the lab's own
    servers (as the rest of the scoring counts them)."""
    records, errors = read_audit(dataset.path / ACTIONS_FILE)
    results = [r for r in records if r.phase is Phase.RESULT]
    proposals = [r for r in records if r.phase is Phase.PROPOSED]
    summaries = tuple(
        ActionSummary(
            time_ns=r.time_ns,
            kind=r.request.kind.value,
            target=_describe(r),
            outcome=r.outcome.value if r.outcome else "",
            attacker=_on_attacker(r, dataset, malicious),
            message=r.message,
        )
        for r in results
    )
    effective = [
        (summary.time_ns, record.request.incident_id)
        for record, summary in zip(results, summaries, strict=True)
        if summary.attacker and summary.outcome == Outcome.DONE.value
    ]
    contained_ns, incident_id = min(effective) if effective else (None, None)
    first_attack = min(
        (ns for entity, ns in tracker.first_ns.items() if entity in malicious), default=None
    )
    asked = [r.time_ns for r in proposals if incident_id in (None, r.request.incident_id)]
    incident_ns = min(asked) if asked else None
    after: tuple[str, ...] | None = None
    connections: int | None = None
    if contained_ns is not None:
        after = tuple(
            sorted(
                f"{entity} ({tracker.programs.get(entity, '?')})"
                for entity, last in tracker.last_active_ns.items()
                if entity in malicious and last > contained_ns
            )
        )
        connections = sum(1 for ns, _ in tracker.egress if ns > contained_ns)
    non_attack = sum(
        1
        for record, summary in zip(results, summaries, strict=True)
        if isinstance(record.request.target, ProcessTarget)
        and not summary.attacker
        and record.outcome in ACTED
    )
    firewall = [r for r in results if r.request.kind in FIREWALL and r.outcome is Outcome.DONE]
    non_attack_blocks = _non_attack(results, summaries, NetworkTarget)
    return ContainmentScore(
        mode=",".join(sorted({r.mode for r in records if r.mode})),
        actions=summaries,
        unreadable_lines=tuple(str(error) for error in errors),
        contained=contained_ns is not None,
        attack_to_incident_s=_seconds(first_attack, incident_ns),
        incident_to_containment_s=_seconds(incident_ns, contained_ns),
        attack_to_containment_s=_seconds(first_attack, contained_ns),
        attacker_processes_after=after,
        attacker_connections_after=connections,
        non_attack_process_actions=non_attack,
        firewall_actions=len(firewall),
        connections_after_firewall=_after_firewall(firewall, tracker) if firewall else None,
        non_attack_blocks=non_attack_blocks,
        non_attack_file_actions=_non_attack(results, summaries, (FileTarget, PersistenceTarget)),
    )


def _non_attack(
    results: list[AuditRecord],
    summaries: tuple[ActionSummary, ...],
    target: type | tuple[type, ...],
) -> int:
    """Actions (done, failed or dry-run) on a ``target`` that is not the attacker's."""
    return sum(
        1
        for record, summary in zip(results, summaries, strict=True)
        if isinstance(record.request.target, target)
        and not summary.attacker
        and record.outcome in ACTED
    )


def _after_firewall(firewall: list[AuditRecord], tracker: ContainmentTracker) -> int:
    """Connects and sends to attacker endpoints that a block or isolation in effect covered."""
    isolated = min(
        (r.time_ns for r in firewall if r.request.kind is ActionKind.ISOLATE), default=None
    )
    blocks = [
        (r.time_ns, r.request.target)
        for r in firewall
        if isinstance(r.request.target, NetworkTarget)
    ]

    def covered(ns: int, endpoint: str) -> bool:
        if isolated is not None and ns > isolated:
            return True
        ip, _, port = endpoint.rpartition(":")
        return any(
            ns > at and target.ip == ip and target.port in (0, int(port)) for at, target in blocks
        )

    return sum(1 for ns, endpoint in tracker.egress if covered(ns, endpoint))
