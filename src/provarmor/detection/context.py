"""Lineage context on the signal path: every signal learns where its process came from.

:class:`ContextDetector` wraps the detectors of a pipeline. It shows each event to one
:class:`~provarmor.graph.lineage.LineageClassifier` first (so the context of the event's own
process is current), then to the detectors, and stamps each signal with the context of the
processes it names (the strongest effect among them wins: own > raising > lowering > neutral):

* **own** (ProvArmor's cgroup, recorded by the agent): the signal is dropped and counted
  (:attr:`ContextStats.own_dropped`); ProvArmor's own work never becomes an incident.
* **lowering** (package transaction, interactive administration, scheduled job, build/test
  lineage): the level is capped at ``lowered_level`` (the detector's is kept in
  ``original_level``) and the score scaled by ``lowered_score_factor``; the alert stays
  for search, but on its own it no longer makes an incident.
* **raising** (network-facing server's child, downloaded-then-executed file, remote input):
  kept as the detector made it, marked ``kept``, never lowered.

It knows nothing of rules or detector names: it changes only the generic fields every
:class:`~provarmor.model.alert.Alert` has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from provarmor.detection.engine import Detector, Signal
from provarmor.graph.lineage import NEUTRAL, Effect, Lineage, LineageClassifier, LineageLimits
from provarmor.model.event import Event

LEVELS = ("informational", "low", "medium", "high", "critical")
_RANK = {Effect.NEUTRAL: 0, Effect.LOWER: 1, Effect.RAISE: 2, Effect.OWN: 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextPolicy:
    lowered_level: str = "low"
    lowered_score_factor: float = 0.25


@dataclass(slots=True)
class ContextStats:
    own_dropped: Counter[str] = field(default_factory=Counter)
    """Signals of ProvArmor's own processes dropped, per rule id."""
    lowered: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)


class ContextDetector:
    """Detectors behind a lineage classifier (see the module docstring)."""

    name = "context"

    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        policy: ContextPolicy | None = None,
        limits: LineageLimits | None = None,
    ) -> None:
        self.detectors = list(detectors)
        self.policy = policy or ContextPolicy()
        self.classifier = LineageClassifier(limits)
        self.stats = ContextStats()

    def on_event(self, event: Event) -> Sequence[Signal]:
        self.classifier.observe(event)
        found: list[Signal] = []
        for detector in self.detectors:
            signals = detector.on_event(event)
            if signals:
                found.extend(signals)
        return self._apply(found) if found else found

    def flush(self) -> Sequence[Signal]:
        found: list[Signal] = []
        for detector in self.detectors:
            found.extend(detector.flush())
        return self._apply(found)

    def lineage_of(self, signal: Signal) -> Lineage:
        """The strongest context among the processes ``signal`` names."""
        best = NEUTRAL
        for entity in signal.process_entity_ids:
            lineage = self.classifier.lineage_of(entity)
            if _RANK[lineage.effect] > _RANK[best.effect]:
                best = lineage
        return best

    def _apply(self, signals: list[Signal]) -> list[Signal]:
        out: list[Signal] = []
        for signal in signals:
            changed = self.contextualize(signal)
            if changed is not None:
                out.append(changed)
        return out

    def contextualize(self, signal: Signal) -> Signal | None:
        """The signal with its context applied; ``None`` for ProvArmor's own (counted)."""
        lineage = self.lineage_of(signal)
        effect = lineage.effect
        if effect is Effect.OWN:
            self.stats.own_dropped[signal.rule_id] += 1
            return None
        if effect is Effect.NEUTRAL:
            return _stamped(signal, lineage, effect="")
        if effect is Effect.RAISE:
            self.stats.kept[signal.rule_id] += 1
            return _stamped(signal, lineage, effect="kept")
        self.stats.lowered[signal.rule_id] += 1
        return self._lowered(signal, lineage)

    def _lowered(self, signal: Signal, lineage: Lineage) -> Signal:
        cap = self.policy.lowered_level
        level = signal.level or "low"
        above = level in LEVELS and LEVELS.index(level) > LEVELS.index(cap)
        new_level = cap if above else level
        stamped = _stamped(signal, lineage, effect="lowered")
        return msgspec.structs.replace(
            stamped,
            level=new_level,
            original_level=signal.level if new_level != signal.level else "",
            score=round(signal.score * self.policy.lowered_score_factor, 6),
        )


def _stamped(signal: Signal, lineage: Lineage, *, effect: str) -> Signal:
    return msgspec.structs.replace(
        signal,
        context=lineage.kind.value,
        context_effect=effect,
        context_reason=lineage.explain(),
    )
