"""Audit records as OCSF 1.3 Remediation events (category 7).

Process actions are Process Remediation Activity (7003); quarantine, restore, revert_file
and unrevert_file File Remediation Activity (7002); block, unblock, isolate and release
Network Remediation Activity (7004); account locking the generic Remediation Activity
(7001). The activity is the D3FEND tactic OCSF uses: Isolate (suspend, block, isolate),
Evict (kill, quarantine, revert_file, lock_user) or Restore (every undo). Only ``result``
and ``undone`` records are events (a proposal is not a remediation yet).
"""

from __future__ import annotations

from typing import Any

from provarmor.response.audit import AuditRecord, Phase
from provarmor.response.records import (
    ActionKind,
    FileTarget,
    NetworkTarget,
    Outcome,
    PersistenceTarget,
    ProcessTarget,
    QuarantinedTarget,
    RevertedTarget,
    UserTarget,
)

OCSF_VERSION = "1.3.0"
CATEGORY_REMEDIATION = 7
ISOLATE, EVICT, RESTORE = 1, 2, 3
ACTIVITY_NAMES = {ISOLATE: "Isolate", EVICT: "Evict", RESTORE: "Restore"}
ACTIVITY: dict[ActionKind, int] = {
    ActionKind.SUSPEND: ISOLATE,
    ActionKind.BLOCK: ISOLATE,
    ActionKind.ISOLATE: ISOLATE,
    ActionKind.KILL: EVICT,
    ActionKind.QUARANTINE: EVICT,
    ActionKind.LOCK_USER: EVICT,
    ActionKind.REVERT_FILE: EVICT,
    ActionKind.RESUME: RESTORE,
    ActionKind.RESTORE: RESTORE,
    ActionKind.UNBLOCK: RESTORE,
    ActionKind.RELEASE: RESTORE,
    ActionKind.UNLOCK_USER: RESTORE,
    ActionKind.UNREVERT_FILE: RESTORE,
}
CLASS: dict[ActionKind, tuple[int, str]] = {
    **dict.fromkeys(
        (ActionKind.KILL, ActionKind.SUSPEND, ActionKind.RESUME),
        (7003, "Process Remediation Activity"),
    ),
    **dict.fromkeys(
        (
            ActionKind.QUARANTINE,
            ActionKind.RESTORE,
            ActionKind.REVERT_FILE,
            ActionKind.UNREVERT_FILE,
        ),
        (7002, "File Remediation Activity"),
    ),
    **dict.fromkeys(
        (ActionKind.BLOCK, ActionKind.UNBLOCK, ActionKind.ISOLATE, ActionKind.RELEASE),
        (7004, "Network Remediation Activity"),
    ),
    **dict.fromkeys((ActionKind.LOCK_USER, ActionKind.UNLOCK_USER), (7001, "Remediation Activity")),
}
STATUS: dict[Outcome, tuple[int, str]] = {
    Outcome.DONE: (1, "Success"),
    Outcome.FAILED: (2, "Failure"),
    Outcome.REFUSED: (99, "Refused"),
    Outcome.DRY_RUN: (99, "Dry run"),
}


def _object(record: AuditRecord) -> dict[str, Any]:
    target = record.request.target
    match target:
        case ProcessTarget():
            return {
                "process": {
                    "pid": target.pid,
                    "uid": target.entity_id,
                    "file": {"path": target.executable},
                }
            }
        case FileTarget() | PersistenceTarget() | RevertedTarget():
            return {"file": {"path": target.path, "type_id": 1}}
        case QuarantinedTarget():
            path = record.affected[0] if record.affected else ""
            return {"file": {"path": path, "uid": target.quarantine_id, "type_id": 1}}
        case NetworkTarget():
            return {
                "connection_info": {"direction_id": 2},
                "dst_endpoint": {"ip": target.ip, "port": target.port},
            }
        case UserTarget():
            return {"user": {"name": target.name}}
        case _:
            return {}


def remediation_event(record: AuditRecord, *, host_id: str = "") -> dict[str, Any] | None:
    """The OCSF event of a result or undo record (``None`` for proposals and executions)."""
    if record.phase not in (Phase.RESULT, Phase.UNDONE) or record.outcome is None:
        return None
    request = record.request
    class_uid, class_name = CLASS[request.kind]
    activity = ACTIVITY[request.kind]
    status_id, status = STATUS[record.outcome]
    event: dict[str, Any] = {
        "category_uid": CATEGORY_REMEDIATION,
        "category_name": "Remediation",
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity,
        "activity_name": ACTIVITY_NAMES[activity],
        "type_uid": class_uid * 100 + activity,
        "severity_id": 1,
        "time": record.time_ns // 1_000_000,
        "status_id": status_id,
        "status": status,
        "status_detail": record.message,
        "command_uid": request.id,
        "countermeasures": [{"name": request.kind.value}],
        "actor": {"user": {"name": request.requested_by}},
        "device": {"uid": request.host_id or host_id},
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "ProvArmor", "vendor_name": "ProvArmor"},
            "correlation_uid": request.incident_id,
        },
        "unmapped": {
            "reason": request.reason,
            "mode": record.mode,
            "affected": list(record.affected),
        },
        **_object(record),
    }
    return event
