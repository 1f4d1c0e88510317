"""Dispatch: which compiled rules an event (or audit record) meets.

Event-kind rules are bucketed by the actions their log source covers, so an exec meets the
``process_creation`` rules (and the product-only keyword rules) and never the
``network_connection`` ones; keyword-only rules skip the actions that have no keyword text,
and rules that pin ``Image`` to a program (``Image|endswith: '/wget'``) are only met by events
of a program of that name. Each bucket carries a record builder that extracts just the
fields its rules read. ``service: auditd`` rules are bucketed by the audit record types
their condition requires (``type: EXECVE`` ...), so a PATH record skips the EXECVE rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from provarmor.detection.sigma.compiler import CompiledRule
from provarmor.detection.sigma.fields import KEYWORD_ACTIONS, RecordKind
from provarmor.detection.sigma.records import EventRecordBuilder, Record
from provarmor.model.actions import Action


@dataclass(frozen=True, slots=True)
class EventBucket:
    """The rules of one action; those that pin ``Image`` to a file name are met only by
    events of that program."""

    rules: tuple[CompiledRule, ...]
    builder: EventRecordBuilder
    unpinned: tuple[CompiledRule, ...]
    by_image_name: dict[str, tuple[CompiledRule, ...]]

    @classmethod
    def of(cls, rules: tuple[CompiledRule, ...], builder: EventRecordBuilder) -> EventBucket:
        unpinned = tuple(rule for rule in rules if rule.image_names is None)
        names = {name for rule in rules for name in rule.image_names or ()}
        by_name = {
            name: tuple(
                rule for rule in rules if rule.image_names is None or name in rule.image_names
            )
            for name in names
        }
        return cls(rules, builder, unpinned, by_name)

    def rules_for(self, record: Record) -> tuple[CompiledRule, ...]:
        if not self.by_image_name:
            return self.rules
        image = record.folded.get("image")
        if image is None:
            return self.unpinned
        return self.by_image_name.get(image.rpartition("/")[2], self.unpinned)


class RuleIndex:
    """Rules by action (event kind) and by audit record type (auditd kind)."""

    def __init__(self, rules: Iterable[CompiledRule]) -> None:
        rules = tuple(rules)
        event_rules = [rule for rule in rules if rule.log_source.kind is RecordKind.EVENT]
        self._buckets: dict[Action, EventBucket] = {}
        for action in Action:
            selected = tuple(
                rule
                for rule in event_rules
                if (rule.log_source.actions is None or action in rule.log_source.actions)
                and (action in KEYWORD_ACTIONS or not _needs_text(rule))
            )
            if selected:
                fields = {name for rule in selected for name in rule.fields}
                keywords = any(rule.keywords for rule in selected)
                builder = EventRecordBuilder(fields, keywords=keywords)
                self._buckets[action] = EventBucket.of(selected, builder)
        audit_rules = [rule for rule in rules if rule.log_source.kind is RecordKind.AUDITD]
        self._audit_any = tuple(rule for rule in audit_rules if rule.record_types is None)
        self._audit_typed: dict[str, tuple[CompiledRule, ...]] = {}
        for rule in audit_rules:
            for record_type in rule.record_types or ():
                self._audit_typed[record_type] = (*self._audit_typed.get(record_type, ()), rule)
        self.audit_rule_count = len(audit_rules)

    def event_bucket(self, action: Action) -> EventBucket | None:
        return self._buckets.get(action)

    def audit_rules(self, record_type: str) -> tuple[CompiledRule, ...]:
        """The auditd rules that can match a record of ``record_type``."""
        typed = self._audit_typed.get(record_type.lower())
        if typed is None:
            return self._audit_any
        return typed + self._audit_any if self._audit_any else typed

    def sizes(self) -> dict[str, int]:
        """Rules per bucket, for reports: ``exec`` -> 140, ``auditd`` -> 54 ..."""
        sizes = {str(action): len(bucket.rules) for action, bucket in self._buckets.items()}
        sizes["auditd"] = self.audit_rule_count
        return sizes


def _needs_text(rule: CompiledRule) -> bool:
    """True if the rule reads only keyword text and cannot match without any: such a rule is
    left out of the actions whose events never have keyword text."""
    return not rule.fields and not rule.predicate(Record({}))
