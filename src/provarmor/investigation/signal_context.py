"""What lineage context did to an incident's signals, in words for the analyst.

Detectors' signals arrive stamped by :mod:`provarmor.detection.context` (``context``,
``context_effect``, ``context_reason``, ``original_level``). This module turns those generic
fields into one note per distinct (rule, effect, reason) for the incident record and one
sentence for its summary. It never looks at detector names or rule ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from provarmor.graph.lineage import DESCRIPTION, ContextKind
from provarmor.model.alert import Alert

MAX_NOTES = 12


def context_notes(alerts: Iterable[Alert]) -> list[str]:
    """``rule (level): kept|lowered high -> low: why`` once per distinct case, kept first."""
    notes: dict[str, None] = {}
    counted: Counter[str] = Counter()
    ordered = sorted(alerts, key=lambda a: (a.context_effect != "kept", a.first_timestamp))
    for alert in ordered:
        if alert.context_effect not in ("kept", "lowered"):
            continue
        if alert.context_effect == "lowered" and alert.original_level:
            change = f"lowered {alert.original_level} -> {alert.level}"
        elif alert.context_effect == "lowered":
            change = f"lowered, stays {alert.level or 'low'}"
        else:
            change = f"kept {alert.level or 'low'} (raising context)"
        note = f"{alert.rule_title}: {change}: {alert.context_reason}"
        counted[note] += 1
        notes.setdefault(note)
    lines = [f"{note} (x{counted[note]})" if counted[note] > 1 else note for note in notes]
    if len(lines) > MAX_NOTES:
        return [*lines[:MAX_NOTES], f"... {len(lines) - MAX_NOTES} more"]
    return lines


def context_sentence(alerts: Iterable[Alert]) -> str:
    """``Context kept 3 signals (network-facing server's child), lowered 1 (package
    transaction)``; empty when context changed nothing."""
    kept: Counter[str] = Counter()
    lowered: Counter[str] = Counter()
    for alert in alerts:
        kind = _describe(alert.context)
        if alert.context_effect == "kept":
            kept[kind] += 1
        elif alert.context_effect == "lowered":
            lowered[kind] += 1
    parts = []
    if kept:
        parts.append(f"kept {kept.total()} signals at their level ({_kinds(kept)})")
    if lowered:
        parts.append(f"lowered {lowered.total()} ({_kinds(lowered)})")
    return "Context " + " and ".join(parts) + "." if parts else ""


def _describe(kind: str) -> str:
    try:
        return DESCRIPTION[ContextKind(kind)]
    except ValueError:  # a kind this version does not know (a newer agent's alert)
        return kind


def _kinds(counts: Counter[str]) -> str:
    return ", ".join(kind for kind, _ in counts.most_common())
