"""Alert formats: ECS alert documents, OCSF Detection Finding (class 2004), and Falco's
output envelope. Pure functions: alert in, JSON-ready dict out."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from provarmor import __version__
from provarmor.model.alert import Alert
from provarmor.model.time_units import ns_to_iso, ns_to_ms

OCSF_VERSION = "1.3.0"
_SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_FALCO_PRIORITY = {
    "informational": "Informational",
    "low": "Notice",
    "medium": "Warning",
    "high": "Error",
    "critical": "Critical",
}


def _attack_reference(technique_id: str) -> str:
    return "https://attack.mitre.org/techniques/" + technique_id.replace(".", "/") + "/"


def ecs_alert(alert: Alert) -> dict[str, object]:
    """An ECS document with ``event.kind: alert``, ``rule.*`` and ``threat.*``."""
    return {
        "@timestamp": ns_to_iso(alert.last_timestamp),
        "event": {
            "kind": "alert",
            "id": alert.id,
            "severity": _SEVERITY_ID.get(alert.level, 0),
            "start": ns_to_iso(alert.first_timestamp),
            "end": ns_to_iso(alert.last_timestamp),
            "count": alert.count,
            "provider": f"provarmor-{alert.detector}",
        },
        "rule": {
            "id": alert.rule_id,
            "name": alert.rule_title,
            "description": alert.description,
            "ruleset": alert.detector,
        },
        "threat": {
            "framework": "MITRE ATT&CK",
            "technique": [
                {"id": ref.id, "name": ref.name, "reference": _attack_reference(ref.id)}
                for ref in alert.techniques
            ],
            "tactic": [{"id": ref.id, "name": ref.name} for ref in alert.tactics],
        },
        "host": {"id": alert.host_id},
        "related": {
            "events": list(alert.event_ids),
            "process_entity_ids": list(alert.process_entity_ids),
            "files": list(alert.file_paths),
            "endpoints": list(alert.remote_endpoints),
        },
        "log": {"level": alert.level},
        **({"provarmor": {"context": context_of(alert)}} if alert.context else {}),
    }


def context_of(alert: Alert) -> dict[str, str]:
    """The lineage context an alert was judged in (empty fields left out)."""
    fields = {
        "kind": alert.context,
        "effect": alert.context_effect,
        "reason": alert.context_reason,
        "original_level": alert.original_level,
    }
    return {key: value for key, value in fields.items() if value}


def ocsf_detection_finding(alert: Alert) -> dict[str, object]:
    """OCSF 1.3 Detection Finding (category 2 Findings, class 2004, activity 1 Create)."""
    severity_id = _SEVERITY_ID.get(alert.level, 0)
    tactics = list(alert.tactics)
    attacks = [
        {
            "technique": {"uid": ref.id, "name": ref.name},
            **({"tactic": {"uid": tactics[0].id, "name": tactics[0].name}} if tactics else {}),
            "version": "18.1",
        }
        for ref in alert.techniques
    ]
    return {
        "category_uid": 2,
        "class_uid": 2004,
        "activity_id": 1,
        "type_uid": 200401,
        "severity_id": severity_id,
        "severity": alert.level.capitalize() if alert.level else "Unknown",
        "status_id": 1,
        "time": ns_to_ms(alert.last_timestamp),
        "message": alert.rule_title,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "ProvArmor", "vendor_name": "ProvArmor", "version": __version__},
            "uid": alert.id,
        },
        "finding_info": {
            "uid": alert.id,
            "title": alert.rule_title,
            "desc": alert.description,
            "first_seen_time": ns_to_ms(alert.first_timestamp),
            "last_seen_time": ns_to_ms(alert.last_timestamp),
            "analytic": {
                "uid": alert.rule_id,
                "name": alert.rule_title,
                "type_id": 1,
                "type": "Rule",
            },
            "attacks": attacks,
            "related_events_count": alert.count,
        },
        "device": {"uid": alert.host_id, "type_id": 0},
        "evidences": [{"process": {"uid": entity}} for entity in alert.process_entity_ids]
        + [{"file": {"path": path, "name": path.rsplit("/", 1)[-1]}} for path in alert.file_paths]
        + [{"dst_endpoint": {"name": endpoint}} for endpoint in alert.remote_endpoints],
        "unmapped": {
            "event_ids": list(alert.event_ids),
            **({"context": context_of(alert)} if alert.context else {}),
        },
    }


def falco_envelope(alert: Alert) -> dict[str, object]:
    """Falco's JSON output shape (``rule``, ``priority``, ``output``, ``output_fields``)."""
    what = ", ".join(alert.file_paths[:3] + alert.remote_endpoints[:3])
    return {
        "time": ns_to_iso(alert.last_timestamp).replace("+00:00", "Z"),
        "rule": alert.rule_title,
        "priority": _FALCO_PRIORITY.get(alert.level, "Notice"),
        "source": "provarmor",
        "hostname": alert.host_id,
        "tags": [ref.id for ref in alert.techniques] + [ref.name for ref in alert.tactics],
        "output": f"{alert.rule_title} (host={alert.host_id}"
        + (f" objects={what}" if what else "")
        + f" count={alert.count})",
        "output_fields": {
            "provarmor.rule_id": alert.rule_id,
            "provarmor.event_ids": list(alert.event_ids),
            "proc.entity_ids": list(alert.process_entity_ids),
            "fd.names": list(alert.file_paths),
            "fd.endpoints": list(alert.remote_endpoints),
            "evt.count": alert.count,
            **({"provarmor.context": context_of(alert)} if alert.context else {}),
        },
    }


FORMATS: dict[str, Callable[[Alert], dict[str, object]]] = {
    "ecs": ecs_alert,
    "ocsf": ocsf_detection_finding,
    "falco": falco_envelope,
}
"""The one list of alert formats, by name. A new format is a function here plus one line in
this list: ``detect --alert-format``, the agent's alert file and the manager's alert output
all take it."""

AlertFormat = StrEnum("AlertFormat", {name: name for name in FORMATS})  # type: ignore[misc]
"""The names of :data:`FORMATS` (settings and ``--alert-format``); mypy sees no members."""
