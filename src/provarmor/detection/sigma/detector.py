"""The Sigma detector: compiled rules and correlations over a stream of canonical events.

``SigmaDetector.on_event`` looks up the rules of the event's action (and, for events with
raw audit fields, the auditd rules of each audit record), evaluates their predicates (or
takes the verdict its bucket remembers for the same field values: :mod:`.index`), turns
matches into alerts and feeds the rules that correlations listen to into the correlation
engine. ``flush`` ends the stream and judges the open correlation windows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from provarmor.detection.sigma.alerts import alert_for_event, alert_for_firing, event_hit
from provarmor.detection.sigma.compiler import CompiledRule, RuleInfo
from provarmor.detection.sigma.correlation import CorrelationEngine, CorrelationLimits, Firing
from provarmor.detection.sigma.index import RuleIndex
from provarmor.detection.sigma.loader import load_rule_paths
from provarmor.detection.sigma.records import Record, audit_record, auditd_records
from provarmor.detection.sigma.ruleset import CheckReport, RuleSet, build_ruleset
from provarmor.model.alert import Alert
from provarmor.model.attack import AttackTable, load_attack_table
from provarmor.model.event import Event


@dataclass(slots=True)
class DetectorStats:
    events: int = 0
    matches: Counter[str] = field(default_factory=Counter)
    """Rule key -> events it matched (silent rules included)."""
    rule_failures: Counter[str] = field(default_factory=Counter)
    """Rule key -> events on which its predicate raised (a bug; the event is kept going)."""


class SigmaDetector:
    """A :class:`provarmor.detection.engine.Detector` running Sigma rules."""

    name = "sigma"

    def __init__(self, ruleset: RuleSet, *, limits: CorrelationLimits | None = None) -> None:
        self._index = ruleset.index
        self._silent = ruleset.silent
        self._correlations = CorrelationEngine(ruleset.correlations, limits=limits)
        self._referenced = self._correlations.referenced
        self._has_correlations = bool(ruleset.correlations)
        self._infos: dict[str, RuleInfo] = {
            spec.info.key: spec.info for spec in ruleset.correlations
        }
        self.stats = DetectorStats()

    @classmethod
    def from_paths(
        cls, paths: Iterable[Path], *, attack: AttackTable | None = None
    ) -> tuple[SigmaDetector, CheckReport]:
        """Load rule files and directories; the report lists what was left out and why."""
        parsed = load_rule_paths(paths)
        ruleset, report = build_ruleset(parsed, attack=attack or load_attack_table())
        return cls(ruleset), report

    @property
    def correlations(self) -> CorrelationEngine:
        return self._correlations

    @property
    def index(self) -> RuleIndex:
        return self._index

    def on_event(self, event: Event) -> list[Alert]:
        self.stats.events += 1
        firings: list[Firing] = []
        if self._has_correlations:
            firings = self._correlations.advance(event.timestamp)
        alerts: list[Alert] = []
        matched = self._matches(event)
        if not matched and not firings:  # most events
            return alerts
        for rule, record in matched:
            key = rule.info.key
            self.stats.matches[key] += 1
            if key not in self._silent:
                alerts.append(alert_for_event(rule.info, event))
            if key in self._referenced:
                firings.extend(self._correlations.observe(event_hit(key, event, record=record)))
        if firings:
            alerts.extend(self._firing_alerts(firings))
        return alerts

    def flush(self) -> list[Alert]:
        """End of stream: judge open correlation windows and forget their state."""
        return self._firing_alerts(self._correlations.flush())

    def _matches(self, event: Event) -> list[tuple[CompiledRule, Record]]:
        matched: list[tuple[CompiledRule, Record]] = []
        bucket = self._index.event_bucket(event.event.action)
        if bucket is not None:
            builder = bucket.builder
            key = builder.key(event)
            rules = bucket.memo.get(key)
            if rules is None:
                record = builder.record(key)
                rules, clean = self._hits(bucket.rules_for(record), record)
                if clean:  # a predicate that raised is counted on every event it meets
                    bucket.memo.put(key, rules)
                matched.extend((rule, record) for rule in rules)
            elif rules:
                record = builder.record(key)
                matched.extend((rule, record) for rule in rules)
        if event.auditd is not None and self._index.audit_rule_count:
            seen: set[str] = set()
            for fields in auditd_records(event):
                record = audit_record(fields)
                for rule in self._hits(self._index.audit_rules(fields.get("type", "")), record)[0]:
                    if rule.info.key not in seen:
                        seen.add(rule.info.key)
                        matched.append((rule, record))
        return matched

    def _hits(
        self, rules: tuple[CompiledRule, ...], record: Record
    ) -> tuple[tuple[CompiledRule, ...], bool]:
        """The rules whose predicate holds, and whether every predicate ran cleanly (one
        that raised, a bug, is counted and taken as not matching)."""
        try:
            return tuple([rule for rule in rules if rule.predicate(record)]), True
        except Exception:  # redo one by one, counting the failures
            return tuple(rule for rule in rules if self._test(rule, record)), False

    def _test(self, rule: CompiledRule, record: Record) -> bool:
        try:
            return rule.predicate(record)
        except Exception:  # a compiled predicate should never raise; count it, keep going
            self.stats.rule_failures[rule.info.key] += 1
            return False

    def _firing_alerts(self, firings: list[Firing]) -> list[Alert]:
        alerts: list[Alert] = []
        for firing in firings:
            info = self._infos[firing.spec.info.key]
            if info.key not in self._silent:
                alerts.append(alert_for_firing(info, firing))
        return alerts
