"""From recorded events and a run's ground truth to labels: which processes, files and
remote endpoints were the attacker's.

:func:`label_events` is pure. It finds the attacker roots in the events (by pid and start
time, as the ground truth recorded them; by the parent a server's children name during a
lateral-movement window; by the tampered programs a process executes), then takes every
descendant that appeared after the attack began, following the ``fork`` convention of
:mod:`provarmor.model.actions` (``process`` is the child, ``process.parent`` the forking
process) and the parent named on any other event. Events whose acting process is malicious
are malicious; so are the files they changed and the endpoints they reached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from provarmor.evaluation.groundtruth import GroundTruth
from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.model.time_units import seconds_to_ns

TOLERANCE_NS = seconds_to_ns(2)
"""Slack for start times: /proc start times are accurate to about a second."""

WRITE_ACTIONS = frozenset(
    {
        Action.WRITE,
        Action.CREATE,
        Action.DELETE,
        Action.RENAME,
        Action.LINK,
        Action.CHMOD,
        Action.CHOWN,
        Action.TRUNCATE,
        Action.MEMFD_CREATE,
    }
)
EGRESS_ACTIONS = frozenset({Action.CONNECT, Action.SEND})


@dataclass(frozen=True, slots=True, kw_only=True)
class Labels:
    processes: frozenset[str] = frozenset()
    """Entity ids of the attacker's processes."""
    events: frozenset[str] = frozenset()
    """Ids of events whose acting process is the attacker's."""
    files: frozenset[str] = frozenset()
    """Paths the attacker's processes created, wrote, renamed, deleted or re-permissioned."""
    endpoints: frozenset[str] = frozenset()
    """``ip:port`` (or the address) the attacker's processes connected or sent to."""


@dataclass(slots=True)
class _Lineage:
    first_seen: dict[str, int] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=dict)
    roots: set[str] = field(default_factory=set)

    def see(self, entity: str, timestamp: int) -> None:
        if entity and (entity not in self.first_seen or timestamp < self.first_seen[entity]):
            self.first_seen[entity] = timestamp

    def link(self, parent: str, child: str) -> None:
        if parent and child and parent != child:
            self.children.setdefault(parent, set()).add(child)


def _starts_match(start: int, expected: int, timestamp: int) -> bool:
    if start:
        return abs(start - expected) <= TOLERANCE_NS
    return timestamp >= expected - TOLERANCE_NS


def _is_root_process(event: Event, truth: GroundTruth) -> bool:
    process = event.process
    for root in truth.attacker_roots:
        if process.pid == root.pid and _starts_match(process.start, root.start_ns, event.timestamp):
            return True
    if event.event.action is Action.EXEC and truth.exec_roots:
        names = {process.executable, *process.args[:2]}
        if event.file is not None:
            names.add(event.file.path)
        in_window = truth.attack_start_ns - TOLERANCE_NS <= event.timestamp
        return in_window and not names.isdisjoint(truth.exec_roots)
    return False


def _parent_is_root(event: Event, truth: GroundTruth) -> bool:
    parent = event.process.parent
    if parent is None:
        return False
    return any(
        parent.pid == root.pid and event.timestamp >= root.start_ns - TOLERANCE_NS
        for root in truth.attacker_roots
    )


def _spawned_by_spawner(event: Event, truth: GroundTruth, lineage: _Lineage) -> bool:
    parent = event.process.parent
    if parent is None:
        return False
    born = lineage.first_seen.get(event.process.entity_id, event.timestamp)
    return any(
        parent.pid == spawner.pid and spawner.from_ns <= born <= spawner.to_ns + TOLERANCE_NS
        for spawner in truth.spawners
    )


def _trace(events: list[Event], truth: GroundTruth) -> _Lineage:
    lineage = _Lineage()
    for event in events:
        lineage.see(event.process.entity_id, event.timestamp)
        target = event.target.process if event.target is not None else None
        if event.event.action is Action.FORK and target is not None:
            lineage.see(target.entity_id, event.timestamp)
    for event in events:
        process = event.process
        parent = process.parent
        if parent is not None:
            lineage.link(parent.entity_id, process.entity_id)
        target = event.target.process if event.target is not None else None
        if event.event.action is Action.FORK and target is not None:
            lineage.link(process.entity_id, target.entity_id)
        if _is_root_process(event, truth) or _spawned_by_spawner(event, truth, lineage):
            lineage.roots.add(process.entity_id)
        if parent is not None and parent.entity_id and _parent_is_root(event, truth):
            lineage.roots.add(parent.entity_id)
    return lineage


def _descendants(lineage: _Lineage, since: int) -> set[str]:
    malicious = set(lineage.roots)
    pending = list(lineage.roots)
    while pending:
        for child in lineage.children.get(pending.pop(), ()):
            if child not in malicious and lineage.first_seen.get(child, since) >= since:
                malicious.add(child)
                pending.append(child)
    malicious.discard("")
    return malicious


def _endpoint(event: Event) -> str:
    destination = event.destination
    if destination is None:
        return ""
    if destination.ip:
        return f"{destination.ip}:{destination.port}"
    return destination.address


def label_events(events: Iterable[Event], truth: GroundTruth) -> Labels:
    """The attacker's processes, events, changed files and reached endpoints."""
    recorded = list(events)
    lineage = _trace(recorded, truth)
    processes = _descendants(lineage, truth.attack_start_ns - TOLERANCE_NS)
    event_ids, files, endpoints = set(), set(), set()
    for event in recorded:
        if event.process.entity_id not in processes:
            continue
        event_ids.add(event.event.id)
        action = event.event.action
        if action in WRITE_ACTIONS and event.file is not None:
            files.add(event.file.path)
            if event.file.original_path:
                files.add(event.file.original_path)
        if action in EGRESS_ACTIONS or (event.network and event.network.direction == "egress"):
            endpoint = _endpoint(event)
            if endpoint:
                endpoints.add(endpoint)
    return Labels(
        processes=frozenset(processes),
        events=frozenset(event_ids),
        files=frozenset(files),
        endpoints=frozenset(endpoints),
    )
