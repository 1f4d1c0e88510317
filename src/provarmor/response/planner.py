"""From an incident and the actions a policy rule picked, the concrete requests: which
processes, files, addresses, users. Pure: no look at the host (the actions re-check
everything before they touch it).

* ``suspend``/``kill``: every process that raised a signal (terminal or root cause with
  alerts), as its process tree, and, when the caller knows the processes' lineage
  (:class:`AttackSide`), the ancestors in the story that carry the attack: walking up the
  story's fork edges from each signalling process, every ancestor whose own context is
  raised (it received remote input, ran a downloaded file, or descends from a service's
  accepted connection) up to, never including, the first one that is not, or that is a
  service taking connections (the victim: a web server, sshd). That is how an implant whose
  short-lived children raise the signals (``curl URL | python3 -`` running ``sh -c id``)
  is reached: the signalling child is gone by the time the incident is seen, the
  interpreter that received the program and the commands is not. Ancestors come first,
  topmost first, so one kill takes the whole attacking tree;
* ``quarantine``: files the attack wrote and one of its processes then ran (dropped
  programs: a process's executable, or a file the story shows executed, as a dropper's
  payload that went on to exec a shell; never other changed files: a modified
  ``/etc/passwd`` stays where it is);
* ``revert_file``: the persistence files (``response.persistence_files``; ``~/`` matches any
  folder here, the action checks the real homes) that a process of the attack wrote, with
  the time of its first write: a signalling process, or, when the caller knows the
  lineage, any process of the story whose lineage is raised (the implant's shell that ran
  ``echo ... >> ~/.bashrc`` need not raise a signal of its own);
* ``block``: every remote endpoint the attack's processes connected or sent to (address
  and port; a peer that only connected to them, a client of a service, is not one);
* ``isolate``: the host;
* ``lock_user``: the users the signalling processes ran as.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Protocol

from provarmor.graph.lineage import Effect, Lineage
from provarmor.investigation.knowledge import WRITES
from provarmor.model.actions import Action
from provarmor.model.incident import Incident, IncidentNode
from provarmor.response.policy import PolicyRule
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    FileTarget,
    HostTarget,
    NetworkTarget,
    PersistenceTarget,
    ProcessTarget,
    Target,
    UserTarget,
)

_OUTBOUND = frozenset({Action.CONNECT.value, Action.SEND.value})
"""Edge actions from a process to a network peer it reached out to."""


class AttackSide(Protocol):
    """What the analysis knows of a process's lineage (a
    :class:`~provarmor.graph.lineage.LineageClassifier` answers both)."""

    def lineage_of(self, entity_id: str) -> Lineage: ...

    def serves(self, entity_id: str) -> bool: ...


def _signalling(incident: Incident) -> list[IncidentNode]:
    return [n for n in incident.nodes if n.kind == "process" and n.alert_ids and n.pid > 0]


def attack_ancestors(incident: Incident, side: AttackSide) -> list[IncidentNode]:
    """The story's ancestors of its signalling processes that carry the attack (see the
    module docstring), topmost first; none of them a signalling process itself."""
    processes = {n.id: n for n in incident.nodes if n.kind == "process"}
    parent = {
        e.dst: e.src
        for e in incident.edges
        if e.action == "fork" and e.src in processes and e.dst in processes
    }
    signalling = {n.id for n in _signalling(incident)}
    found: dict[str, int] = {}
    for start in signalling:
        node_id, depth, seen = parent.get(start), 1, {start}
        while node_id is not None and node_id not in seen:
            seen.add(node_id)
            node = processes[node_id]
            if (
                node.pid <= 0
                or side.lineage_of(node_id).effect is not Effect.RAISE
                or side.serves(node_id)
            ):
                break
            if node_id not in signalling:
                found[node_id] = max(found.get(node_id, 0), depth)
            node_id, depth = parent.get(node_id), depth + 1
    ordered = sorted(found, key=lambda n: (-found[n], processes[n].first_ts, n))
    return [processes[n] for n in ordered]


def _process_targets(incident: Incident, side: AttackSide | None) -> list[Target]:
    nodes = _signalling(incident)
    if side is not None:
        nodes = attack_ancestors(incident, side) + nodes
    return [ProcessTarget(entity_id=n.id, pid=n.pid, executable=n.executable) for n in nodes]


def _ran(incident: Incident) -> set[str]:
    """The programs the story's processes ran: their executables and the files it shows
    executed (a process that exec'd a dropped file and then a shell is named by the shell)."""
    paths = {n.id: n.path for n in incident.nodes if n.kind == "file" and n.path}
    ran = {n.executable for n in incident.nodes if n.kind == "process" and n.executable}
    ran.update(paths[e.src] for e in incident.edges if e.action == "exec" and e.src in paths)
    return ran


def _reached_endpoints(incident: Incident) -> list[Target]:
    """The contacted endpoints the incident's processes connected or sent to (never a peer
    that only connected to them: a client's port is not where the attacker is reached)."""
    contacted = set(incident.contacted_endpoints)
    processes = {n.id for n in incident.nodes if n.kind == "process"}
    reached = {e.dst for e in incident.edges if e.action in _OUTBOUND and e.src in processes}
    return [
        NetworkTarget(ip=n.ip, port=n.port)
        for n in incident.nodes
        if n.kind == "socket" and n.ip and n.label in contacted and n.id in reached
    ]


def _persistent(path: str, patterns: tuple[str, ...]) -> bool:
    """``path`` is one of the persistence files ``patterns`` name, ``~`` standing for any
    folder (the action checks the host's real homes)."""
    pure = PurePosixPath(path)
    return any(pure.match("*" + p[1:] if p.startswith("~/") else p) for p in patterns)


def _persistence_writes(
    incident: Incident, side: AttackSide | None, patterns: tuple[str, ...]
) -> list[Target]:
    """The persistence files the attack's processes wrote, first written first."""
    files = {
        n.id: n.path
        for n in incident.nodes
        if n.kind == "file" and n.path and _persistent(n.path, patterns)
    }
    writers = {n.id for n in _signalling(incident)}
    if side is not None:
        writers.update(
            n.id
            for n in incident.nodes
            if n.kind == "process" and side.lineage_of(n.id).effect is Effect.RAISE
        )
    first: dict[str, int] = {}
    for edge in incident.edges:
        if edge.action in WRITES and edge.src in writers and edge.dst in files:
            path = files[edge.dst]
            first[path] = min(first.get(path, edge.first_ts), edge.first_ts)
    ordered = sorted(first, key=lambda path: (first[path], path))
    return [PersistenceTarget(path=path, written_ns=first[path]) for path in ordered]


def targets_for(
    kind: ActionKind,
    incident: Incident,
    rule: PolicyRule,
    side: AttackSide | None = None,
    *,
    persistence: tuple[str, ...] = (),
) -> list[Target]:
    if kind in (ActionKind.SUSPEND, ActionKind.KILL):
        return _process_targets(incident, side)
    if kind is ActionKind.QUARANTINE:
        return [FileTarget(path=path) for path in incident.impacted_files if path in _ran(incident)]
    if kind is ActionKind.REVERT_FILE:
        return _persistence_writes(incident, side, persistence)
    if kind is ActionKind.BLOCK:
        return _reached_endpoints(incident)
    if kind is ActionKind.ISOLATE:
        return [HostTarget(release_after_seconds=rule.isolate_release_seconds)]
    if kind is ActionKind.LOCK_USER:
        users = dict.fromkeys(n.user for n in _signalling(incident) if n.user)
        return [UserTarget(name=user) for user in users]
    return []


def target_key(kind: ActionKind, target: Target) -> str:
    """What makes two requests the same action (an incident's later versions ask again)."""
    match target:
        case ProcessTarget():
            detail = target.entity_id
        case FileTarget() | PersistenceTarget():
            detail = target.path
        case NetworkTarget():
            detail = f"{target.ip}:{target.port}"
        case UserTarget():
            detail = target.name
        case _:
            detail = type(target).__name__
    return f"{kind.value}|{detail}"


def request_id(incident_id: str, key: str) -> str:
    digest = hashlib.blake2b(f"{incident_id}|{key}".encode(), digest_size=10).hexdigest()
    return f"act-{digest}"


def plan_requests(
    incident: Incident,
    rule: PolicyRule,
    *,
    kinds: tuple[ActionKind, ...],
    side: AttackSide | None = None,
    persistence: tuple[str, ...] = (),
) -> list[ActionRequest]:
    """The requests of ``kinds`` (in that order) for ``incident``; ``side``: the lineage of
    its processes, when the caller runs the analysis (process actions then also reach the
    attack's living ancestors, and the files of raised processes are reverted);
    ``persistence``: the patterns of the persistence files (``revert_file``)."""
    reason = f"incident {incident.id} ({incident.severity}): {incident.title}"
    requests: list[ActionRequest] = []
    for kind in kinds:
        for target in targets_for(kind, incident, rule, side, persistence=persistence):
            requests.append(
                ActionRequest(
                    id=request_id(incident.id, target_key(kind, target)),
                    kind=kind,
                    target=target,
                    requested_by=f"policy:{rule.name}",
                    reason=reason,
                    incident_id=incident.id,
                    host_id=incident.host_id,
                )
            )
    return requests
