"""The alert: what a detector says about one or more events, immutable and self-describing.

An alert names the rule that fired, the ATT&CK techniques and tactics the rule is tagged with
(ids and names, resolved through :mod:`provarmor.model.attack`), and the things it is about:
the events, processes, files and remote endpoints involved, on which host, from when to when.
"""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct

from provarmor.model.attack import AttackRef


class SignalKind(StrEnum):
    """How a signal says how strong it is, whatever detector made it."""

    MATCH = "match"
    """A pattern matched: ``level`` is its strength; repeats of one rule add nothing."""
    SCORE = "score"
    """A measurement crossed its threshold: ``score`` (score/threshold) is its strength, per
    process it names."""


class Alert(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One detection. ``count`` events matched between ``first_timestamp`` and
    ``last_timestamp`` (ns since the epoch); ``event_ids`` lists them, possibly capped for
    correlation alerts over many events (``count`` stays exact)."""

    id: str
    """Unique per alert: the rule id and the id of the event that completed the match."""
    rule_id: str
    rule_title: str
    level: str = ""
    """Sigma level: ``informational``, ``low``, ``medium``, ``high``, ``critical``."""
    description: str = ""
    detector: str = "sigma"
    techniques: tuple[AttackRef, ...] = ()
    tactics: tuple[AttackRef, ...] = ()
    host_id: str = ""
    event_ids: tuple[str, ...] = ()
    process_entity_ids: tuple[str, ...] = ()
    file_paths: tuple[str, ...] = ()
    remote_endpoints: tuple[str, ...] = ()
    """``ip:port`` (``[ip]:port`` for IPv6), a domain, or a unix socket path."""
    first_timestamp: int = 0
    last_timestamp: int = 0
    count: int = 1
    context: str = ""
    """The lineage context of the process the alert is about (:mod:`provarmor.graph.lineage`
    kinds: ``package``, ``admin``, ``server-child`` ...); empty when none was judged."""
    context_effect: str = ""
    """What that context did to the alert: ``lowered``, ``kept`` (a raising context; never
    lowered) or empty (neutral)."""
    context_reason: str = ""
    """Why, in words: the lineage chain and what started it."""
    original_level: str = ""
    """The detector's level when the context changed it (``level`` is then the new one)."""
    score: float = 0.0
    """Strength on the detector's own scale: for the anomaly model, the process's anomaly score
    divided by the calibrated threshold (>= 1 when it fired); 0 for rules (their ``level``
    says it)."""
    kind: SignalKind = SignalKind.MATCH
    """Which of ``level`` and ``score`` says how strong the signal is (the investigation layer
    weighs signals by it, never by ``detector``)."""

    @property
    def technique_ids(self) -> tuple[str, ...]:
        return tuple(ref.id for ref in self.techniques)

    @property
    def tactic_names(self) -> tuple[str, ...]:
        return tuple(ref.name for ref in self.tactics)
