"""From an incident and the actions a policy rule picked, the concrete requests: which
processes, files, addresses, users. Pure: no look at the host (the actions re-check
everything before they touch it).

* ``suspend``/``kill``: every process that raised a signal (terminal or root cause with
  alerts), as its process tree;
* ``quarantine``: files the attack wrote and one of its processes then ran (dropped
  programs; never other changed files: a modified ``/etc/passwd`` stays where it is);
* ``block``: every remote endpoint the attack's processes contacted (address and port);
* ``isolate``: the host;
* ``lock_user``: the users the signalling processes ran as.
"""

from __future__ import annotations

import hashlib

from provarmor.model.incident import Incident, IncidentNode
from provarmor.response.policy import PolicyRule
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    FileTarget,
    HostTarget,
    NetworkTarget,
    ProcessTarget,
    Target,
    UserTarget,
)


def _signalling(incident: Incident) -> list[IncidentNode]:
    return [n for n in incident.nodes if n.kind == "process" and n.alert_ids and n.pid > 0]


def targets_for(kind: ActionKind, incident: Incident, rule: PolicyRule) -> list[Target]:
    if kind in (ActionKind.SUSPEND, ActionKind.KILL):
        return [
            ProcessTarget(entity_id=n.id, pid=n.pid, executable=n.executable)
            for n in _signalling(incident)
        ]
    if kind is ActionKind.QUARANTINE:
        ran = {n.executable for n in incident.nodes if n.kind == "process" and n.executable}
        return [FileTarget(path=path) for path in incident.impacted_files if path in ran]
    if kind is ActionKind.BLOCK:
        contacted = set(incident.contacted_endpoints)
        return [
            NetworkTarget(ip=n.ip, port=n.port)
            for n in incident.nodes
            if n.kind == "socket" and n.ip and n.label in contacted
        ]
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
        case FileTarget():
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
    incident: Incident, rule: PolicyRule, *, kinds: tuple[ActionKind, ...]
) -> list[ActionRequest]:
    """The requests of ``kinds`` (in that order) for ``incident``."""
    reason = f"incident {incident.id} ({incident.severity}): {incident.title}"
    requests: list[ActionRequest] = []
    for kind in kinds:
        for target in targets_for(kind, incident, rule):
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
