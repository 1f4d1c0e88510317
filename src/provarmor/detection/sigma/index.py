"""Dispatch: which compiled rules an event (or audit record) meets.

Event-kind rules are bucketed by the actions their log source covers, so an exec meets the
``process_creation`` rules (and the product-only keyword rules) and never the
``network_connection`` ones; keyword-only rules skip the actions that have no keyword text,
and rules that pin ``Image`` to a program (``Image|endswith: '/wget'``) are only met by events
of a program of that name. Each bucket carries a record builder that extracts just the
fields its rules read. ``service: auditd`` rules are bucketed by the audit record types
their condition requires (``type: EXECVE`` ...), so a PATH record skips the EXECVE rules.
No rule meets a ``running`` event (a process already running when the sensor started: a
snapshot, not an act; rules see what the process does next).

A rule's verdict depends only on the values of the fields it reads and the keyword text
(compiled predicates are pure), so each bucket remembers which of its rules matched a
record (:class:`RuleMemo`, keyed by :data:`~provarmor.detection.sigma.records.RecordKey`):
the same program opening the same file again, most of a host's events, costs one look-up
instead of folding the values and running the predicates. The memo is bounded (emptied when
full, counted; long records are not kept); the index, and with it the memo, is built once
per rule set and shared by the detectors of every host that runs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from provarmor.detection.sigma.compiler import CompiledRule
from provarmor.detection.sigma.fields import KEYWORD_ACTIONS, RecordKind
from provarmor.detection.sigma.records import EventRecordBuilder, Record, RecordKey
from provarmor.model.actions import Action

MEMO_ENTRIES = 8192
"""Records a bucket remembers the matching rules of before it starts over."""
MEMO_MAX_CHARS = 1024
"""Records longer than this (field values and keyword text together) are judged every time:
such long command lines are rarely repeated, and the memo stays small (per bucket at most
``MEMO_ENTRIES`` records of this many characters; 23,000 records of real lab recordings
took 4.6 MB)."""


@dataclass(slots=True)
class RuleMemo:
    """Record key -> the rules that matched it (bounded: emptied when full)."""

    capacity: int = MEMO_ENTRIES
    max_chars: int = MEMO_MAX_CHARS
    matched: dict[RecordKey, tuple[CompiledRule, ...]] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    resets: int = 0
    """Times it was full and started over."""
    too_long: int = 0
    """Records not remembered for their length."""

    def get(self, key: RecordKey) -> tuple[CompiledRule, ...] | None:
        found = self.matched.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: RecordKey, rules: tuple[CompiledRule, ...]) -> None:
        values, text = key
        length = sum(len(value) for value in values if value is not None)
        if length + sum(len(item) for item in text) > self.max_chars:
            self.too_long += 1
            return
        if len(self.matched) >= self.capacity:
            self.matched.clear()
            self.resets += 1
        self.matched[key] = rules


@dataclass(frozen=True, slots=True)
class EventBucket:
    """The rules of one action; those that pin ``Image`` to a file name are met only by
    events of that program."""

    rules: tuple[CompiledRule, ...]
    builder: EventRecordBuilder
    unpinned: tuple[CompiledRule, ...]
    by_image_name: dict[str, tuple[CompiledRule, ...]]
    memo: RuleMemo = field(default_factory=RuleMemo, compare=False)

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
            if action is Action.RUNNING:
                continue  # a snapshot of what ran before the sensor, not an act
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

    def memo_counts(self) -> dict[str, int]:
        """Look-ups the buckets' memos answered (``hits``), missed, times one started over
        (``resets``) and records too long to remember, over every bucket."""
        memos = [bucket.memo for bucket in self._buckets.values()]
        return {
            "hits": sum(memo.hits for memo in memos),
            "misses": sum(memo.misses for memo in memos),
            "resets": sum(memo.resets for memo in memos),
            "too_long": sum(memo.too_long for memo in memos),
        }

    def sizes(self) -> dict[str, int]:
        """Rules per bucket, for reports: ``exec`` -> 140, ``auditd`` -> 54 ..."""
        sizes = {str(action): len(bucket.rules) for action, bucket in self._buckets.items()}
        sizes["auditd"] = self.audit_rule_count
        return sizes


def _needs_text(rule: CompiledRule) -> bool:
    """True if the rule reads only keyword text and cannot match without any: such a rule is
    left out of the actions whose events never have keyword text."""
    return not rule.fields and not rule.predicate(Record({}))
