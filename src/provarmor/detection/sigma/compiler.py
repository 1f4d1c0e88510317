"""Turn one parsed Sigma rule into a :class:`CompiledRule`: where it applies, what it reads,
its predicate, and the ATT&CK techniques and tactics its tags name.

Raises :class:`UnsupportedRule` (valid Sigma this engine cannot honour, with the reason) or
:class:`RuleError` (a broken rule, e.g. a condition naming a missing selection).
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import SigmaString, SpecialChars

from provarmor.detection.sigma.evaluator import ConditionNode, UnsupportedRule, compile_detection
from provarmor.detection.sigma.fields import (
    PROGRAM_FIELD,
    LogSource,
    RecordKind,
    UnsupportedLogSource,
    auditd_field_known,
    map_logsource,
)
from provarmor.detection.sigma.loader import RuleSource
from provarmor.detection.sigma.predicates import Predicate
from provarmor.model.attack import AttackRef, AttackTable
from provarmor.model.errors import RuleError


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleInfo:
    """What an alert says about the rule that raised it."""

    key: str
    """The rule id, else its name, else ``file#document``: unique within a rule set."""
    id: str
    name: str
    title: str
    level: str
    description: str
    path: str
    techniques: tuple[AttackRef, ...]
    tactics: tuple[AttackRef, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledRule:
    info: RuleInfo
    log_source: LogSource
    predicate: Predicate
    fields: frozenset[str]
    """Record keys the predicate reads."""
    keywords: bool
    """Whether the predicate searches the record's keyword text."""
    record_types: frozenset[str] | None = None
    """auditd rules: the (lower-case) record types it can match; None: any."""
    image_names: frozenset[str] | None = None
    """Event rules: the (lower-case) program file names ``Image`` must end in; None: any."""


def rule_info(source: RuleSource, *, attack: AttackTable) -> RuleInfo:
    rule = source.rule
    tags = attack.resolve_tags([str(tag) for tag in rule.tags])
    rule_id = str(rule.id) if rule.id is not None else ""
    return RuleInfo(
        key=rule_id or rule.name or f"{source.path}#{source.document}",
        id=rule_id,
        name=rule.name or "",
        title=rule.title,
        level=str(rule.level) if rule.level is not None else "",
        description=(rule.description or "").strip(),
        path=source.path,
        techniques=tags.techniques,
        tactics=tags.tactics,
    )


def compile_rule(source: RuleSource, *, attack: AttackTable) -> CompiledRule:
    """Compile a detection rule (not a correlation)."""
    rule = source.rule
    if isinstance(rule, SigmaCorrelationRule):
        raise TypeError("compile_rule takes detection rules; correlations have their own")
    logsource = rule.logsource
    try:
        log_source = map_logsource(
            product=logsource.product, category=logsource.category, service=logsource.service
        )
    except UnsupportedLogSource as error:
        raise UnsupportedRule(f"logsource: {error}") from None
    conditions = _parsed_conditions(source, rule)
    reads = _FieldReads(log_source)
    predicate = _requiring(log_source.requires, compile_detection(conditions, resolve=reads))
    reads.used.update(log_source.requires)
    if log_source.programs is not None:
        predicate = _from_programs(log_source.programs, predicate)
        reads.used.add(PROGRAM_FIELD)
    record_types = image_names = None
    if log_source.kind is RecordKind.AUDITD:
        record_types = _any_types([_required_types(node) for node in conditions])
    else:
        image_names = _any_types([_required_image_names(node) for node in conditions])
    return CompiledRule(
        info=rule_info(source, attack=attack),
        log_source=log_source,
        predicate=predicate,
        fields=frozenset(reads.used),
        keywords=any(_uses_keywords(node) for node in conditions),
        record_types=record_types,
        image_names=image_names,
    )


def _requiring(keys: frozenset[str], predicate: Predicate) -> Predicate:
    """``predicate`` only on records that have every one of ``keys``."""
    if not keys:
        return predicate
    needed = tuple(keys)
    return lambda record: all(key in record.values for key in needed) and predicate(record)


def _from_programs(programs: frozenset[str], predicate: Predicate) -> Predicate:
    """``predicate`` only on host-log records of one of ``programs``."""
    return lambda record: record.values.get(PROGRAM_FIELD) in programs and predicate(record)


def _parsed_conditions(source: RuleSource, rule: SigmaRule) -> list[ConditionNode]:
    where = source.location("detection.condition")
    nodes: list[ConditionNode] = []
    for condition in rule.detection.parsed_condition:
        try:
            node = condition.parsed
        except SigmaError as error:
            message = str(error.args[0]) if error.args else type(error).__name__
            raise RuleError(message, location=where) from None
        if node is None:
            raise RuleError("condition selects nothing", location=where)
        nodes.append(node)
    return nodes


class _FieldReads:
    """Field resolver for :func:`compile_detection` that also records what is read."""

    def __init__(self, log_source: LogSource) -> None:
        self._log_source = log_source
        self.used: set[str] = set()

    def __call__(self, name: str) -> str:
        key = name.lower()
        if self._log_source.kind is RecordKind.AUDITD:
            known = auditd_field_known(key)
        else:
            known = key in self._log_source.fields
        if not known:
            raise UnsupportedRule(
                f"field '{name}' is not mapped for logsource '{self._log_source.name}'"
            )
        self.used.add(key)
        return key


def _uses_keywords(node: object) -> bool:
    if isinstance(node, ConditionValueExpression):
        return True
    if isinstance(node, ConditionItem):
        return any(_uses_keywords(arg) for arg in node.args)
    return False


def _required_types(node: object) -> frozenset[str] | None:
    """The audit record types ``node`` can only be true on (None: any type)."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if node.field.lower() == "type" and isinstance(node.value, SigmaString):
            parts = node.value.s
            if len(parts) == 1 and isinstance(parts[0], str):
                return frozenset({parts[0].lower()})
        return None
    if isinstance(node, ConditionAND):
        known = [t for t in (_required_types(arg) for arg in node.args) if t is not None]
        return frozenset.intersection(*known) if known else None
    if isinstance(node, ConditionOR):
        return _any_types([_required_types(arg) for arg in node.args])
    if isinstance(node, ConditionNOT):
        return None
    return None


def _required_image_names(node: object) -> frozenset[str] | None:
    """The program file names ``Image`` must have for ``node`` to be true (None: any)."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if node.field.lower() == "image" and isinstance(node.value, SigmaString):
            return _image_name(node.value)
        return None
    if isinstance(node, ConditionAND):
        known = [n for n in (_required_image_names(arg) for arg in node.args) if n is not None]
        return frozenset.intersection(*known) if known else None
    if isinstance(node, ConditionOR):
        return _any_types([_required_image_names(arg) for arg in node.args])
    return None


def _image_name(value: SigmaString) -> frozenset[str] | None:
    """``*/wget`` and ``/usr/bin/wget`` pin the file name to ``wget``; other shapes do not."""
    parts = value.s
    if len(parts) == 2 and parts[0] is SpecialChars.WILDCARD_MULTI:
        tail = parts[1]
        if isinstance(tail, str) and tail.startswith("/") and "/" not in tail[1:] and tail[1:]:
            return frozenset({tail[1:].lower()})
    if len(parts) == 1 and isinstance(parts[0], str) and parts[0].startswith("/"):
        name = parts[0].rsplit("/", 1)[1]
        return frozenset({name.lower()}) if name else None
    return None


def _any_types(options: list[frozenset[str] | None]) -> frozenset[str] | None:
    if not options or any(option is None for option in options):
        return None
    return frozenset().union(*(option for option in options if option is not None))
