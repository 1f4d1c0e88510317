"""Build a :class:`RuleSet` from parsed rule files, and the report of what did not make it.

Each detection rule is compiled (:mod:`.compiler`); then correlations are compiled in
dependency order, their rule references resolved by id or name (also across files). A rule
referenced by a correlation without ``generate: true`` stays silent: it only feeds the
correlation. Every rule ends up in exactly one of ``loaded``, ``unsupported`` (with the
reason) or ``errors`` (with file and field).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sigma.correlations import SigmaCorrelationRule, SigmaCorrelationType
from sigma.exceptions import SigmaError

from provarmor.detection.sigma.compiler import CompiledRule, RuleInfo, compile_rule, rule_info
from provarmor.detection.sigma.correlation import (
    CorrelationKind,
    CorrelationSpec,
    CountCondition,
)
from provarmor.detection.sigma.evaluator import UnsupportedRule
from provarmor.detection.sigma.index import RuleIndex
from provarmor.detection.sigma.loader import ParsedRules, RuleSource
from provarmor.detection.sigma.records import Record
from provarmor.model.attack import AttackTable
from provarmor.model.errors import RuleError
from provarmor.model.time_units import NS_PER_SECOND

_LEVELS = ("", "informational", "low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSet:
    """Compiled rules and correlations, ready for a detector."""

    rules: tuple[CompiledRule, ...] = ()
    correlations: tuple[CorrelationSpec, ...] = ()
    silent: frozenset[str] = frozenset()
    """Keys of rules and correlations that only feed correlations (``generate: false``)."""
    index: RuleIndex = field(init=False, repr=False, compare=False)
    """The rules by event kind, built once: every detector of this rule set shares it (and
    its memo of verdicts: :mod:`provarmor.detection.sigma.index`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", RuleIndex(self.rules))


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedRule:
    path: str
    key: str
    title: str
    log_source: str
    """The log source name (``process_creation``, ``auditd`` ...) or ``correlation``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleProblem:
    """A valid rule this engine does not evaluate, and why."""

    path: str
    rule: str
    reason: str


@dataclass(slots=True, kw_only=True)
class CheckReport:
    files: int = 0
    loaded: list[LoadedRule] = field(default_factory=list)
    unsupported: list[RuleProblem] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Loaded rules with something odd, e.g. an ATT&CK tag the packaged table lacks."""

    @property
    def total(self) -> int:
        return len(self.loaded) + len(self.unsupported) + len(self.errors)

    @property
    def loaded_fraction(self) -> float:
        return len(self.loaded) / self.total if self.total else 0.0

    def reasons(self) -> Counter[str]:
        """How many rules each unsupported reason kept out."""
        return Counter(problem.reason for problem in self.unsupported)


def build_ruleset(parsed: ParsedRules, *, attack: AttackTable) -> tuple[RuleSet, CheckReport]:
    report = CheckReport(files=parsed.files, errors=list(parsed.errors))
    rules: list[CompiledRule] = []
    correlations: list[RuleSource] = []
    left_out: set[str] = set()
    taken: set[str] = set()
    for source in parsed.sources:
        if isinstance(source.rule, SigmaCorrelationRule):
            correlations.append(source)
            continue
        rule = _compile_detection(source, parsed, attack=attack, report=report)
        if rule is not None and rule.info.key in taken:
            message = f"rule id '{rule.info.key}' is used twice"
            report.errors.append(RuleError(message, location=source.location("id")))
            rule = None
        if rule is None:
            left_out.update(_names(source))
            continue
        taken.add(rule.info.key)
        rules.append(rule)
        _note_loaded(report, source, info=rule.info, log_source=rule.log_source.name, attack=attack)
    compiled = _compile_correlations(
        correlations, rules, attack=attack, report=report, left_out=left_out
    )
    silent = {
        key
        for source, spec in compiled
        if isinstance(source.rule, SigmaCorrelationRule) and not source.rule.generate
        for key in spec.rules
    }
    specs = tuple(spec for _, spec in compiled)
    ruleset = RuleSet(rules=tuple(rules), correlations=specs, silent=frozenset(silent))
    return ruleset, report


def _compile_detection(
    source: RuleSource, parsed: ParsedRules, *, attack: AttackTable, report: CheckReport
) -> CompiledRule | None:
    try:
        source = _with_filters(source, parsed)
        compiled = compile_rule(source, attack=attack)
        compiled.predicate(Record({}))  # must run on a record without any field
    except UnsupportedRule as error:
        report.unsupported.append(
            RuleProblem(path=source.path, rule=source.label, reason=error.reason)
        )
        return None
    except RuleError as error:
        report.errors.append(error)
        return None
    except Exception as error:  # a rule that breaks the engine is the rule's fault
        report.errors.append(
            RuleError(f"rule cannot be compiled: {error!r}", location=source.location("detection"))
        )
        return None
    return compiled


def _with_filters(source: RuleSource, parsed: ParsedRules) -> RuleSource:
    rule = source.rule
    for sigma_filter in parsed.filters:
        try:
            rule = sigma_filter.apply_on_rule(rule)
        except SigmaError as error:
            raise RuleError(
                f"filter '{sigma_filter.title}' cannot be applied: {error}",
                location=source.location("detection"),
            ) from None
    if rule is source.rule:
        return source
    return RuleSource(rule=rule, path=source.path, document=source.document)


def _note_loaded(
    report: CheckReport, source: RuleSource, *, info: RuleInfo, log_source: str, attack: AttackTable
) -> None:
    report.loaded.append(
        LoadedRule(path=source.path, key=info.key, title=info.title, log_source=log_source)
    )
    unknown = attack.resolve_tags([str(tag) for tag in source.rule.tags]).unknown
    report.warnings.extend(f"{source.path}: unknown ATT&CK tag {tag}" for tag in unknown)


def _compile_correlations(
    sources: list[RuleSource],
    rules: list[CompiledRule],
    *,
    attack: AttackTable,
    report: CheckReport,
    left_out: set[str],
) -> list[tuple[RuleSource, CorrelationSpec]]:
    """Compile correlations once the rules they refer to are known; ``left_out`` holds the
    ids and names of rules that were not loaded (a correlation over them is left out too)."""
    known: dict[str, RuleInfo] = {}
    for rule in rules:
        _register(known, rule.info)
    specs: list[tuple[RuleSource, CorrelationSpec]] = []
    waiting = list(sources)
    while waiting:
        ready = [s for s in waiting if all(r in known or r in left_out for r in _references(s))]
        if not ready:
            break
        for source in ready:
            waiting.remove(source)
            spec = _compile_correlation(source, known, attack=attack, report=report)
            if spec is None:
                left_out.update(_names(source))
                continue
            specs.append((source, spec))
            _register(known, spec.info)
            _note_loaded(report, source, info=spec.info, log_source="correlation", attack=attack)
    for source in waiting:
        unknown = ", ".join(ref for ref in _references(source) if ref not in known)
        report.errors.append(
            RuleError(f"refers to unknown rule(s) {unknown}", location=_where(source))
        )
    return specs


def _names(source: RuleSource) -> set[str]:
    """The ids and names other rules may use to refer to ``source``."""
    return {name for name in (source.label, str(source.rule.id or ""), source.rule.name) if name}


def _register(known: dict[str, RuleInfo], info: RuleInfo) -> None:
    for name in (info.key, info.id, info.name):
        if name:
            known[name] = info


def _references(source: RuleSource) -> list[str]:
    rule = source.rule
    assert isinstance(rule, SigmaCorrelationRule)
    return [ref.reference for ref in rule.rules or []]


def _where(source: RuleSource) -> str:
    return source.location("correlation.rules")


_KINDS = {
    SigmaCorrelationType.EVENT_COUNT: CorrelationKind.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT: CorrelationKind.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL: CorrelationKind.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED: CorrelationKind.TEMPORAL_ORDERED,
}


def _compile_correlation(
    source: RuleSource, known: dict[str, RuleInfo], *, attack: AttackTable, report: CheckReport
) -> CorrelationSpec | None:
    try:
        missing = [ref for ref in _references(source) if ref not in known]
        if missing:
            raise UnsupportedRule(
                f"correlation refers to rules that are not loaded: {', '.join(missing)}"
            )
        return _correlation_spec(source, known, attack=attack)
    except UnsupportedRule as error:
        report.unsupported.append(
            RuleProblem(path=source.path, rule=source.label, reason=error.reason)
        )
    except RuleError as error:
        report.errors.append(error)
    return None


def _correlation_spec(
    source: RuleSource, known: dict[str, RuleInfo], *, attack: AttackTable
) -> CorrelationSpec:
    rule = source.rule
    assert isinstance(rule, SigmaCorrelationRule)
    kind = _KINDS.get(rule.type)
    if kind is None:
        raise UnsupportedRule(f"correlation type '{rule.type}' is not supported")
    referenced = [known[ref.reference] for ref in rule.rules or []]
    if not referenced:
        raise UnsupportedRule("correlation without a rules list (extended condition)")
    condition, value_field = _condition(source, kind, count=len(referenced))
    info = _inherit(rule_info(source, attack=attack), referenced)
    aliases = {
        alias.alias: {known[ref.reference].key: name for ref, name in alias.mapping.items()}
        for alias in rule.aliases
        if all(ref.reference in known for ref in alias.mapping)
    }
    return CorrelationSpec(
        info=info,
        kind=kind,
        rules=tuple(ref.key for ref in referenced),
        group_by=tuple(rule.group_by or ()),
        aliases=aliases,
        timespan_ns=rule.timespan.seconds * NS_PER_SECOND,
        condition=condition,
        value_field=value_field,
    )


def _condition(
    source: RuleSource, kind: CorrelationKind, *, count: int
) -> tuple[CountCondition, str | None]:
    raw = source.correlation_condition
    where = source.location("correlation.condition")
    if raw is None:
        if kind not in (CorrelationKind.TEMPORAL, CorrelationKind.TEMPORAL_ORDERED):
            raise RuleError("correlation has no condition", location=where)
        return CountCondition((("gte", float(count)),)), None
    try:
        condition = CountCondition.from_mapping({str(k): v for k, v in raw.items()})
    except ValueError as error:
        raise RuleError(str(error), location=where) from None
    value_field = raw.get("field")
    if kind is CorrelationKind.VALUE_COUNT and not isinstance(value_field, str):
        raise RuleError("value_count needs the condition's 'field'", location=where)
    temporal = kind in (CorrelationKind.TEMPORAL, CorrelationKind.TEMPORAL_ORDERED)
    if temporal and not condition.monotone:
        raise UnsupportedRule(f"{kind} correlation with an upper bound or eq/neq condition")
    return condition, value_field if isinstance(value_field, str) else None


def _inherit(info: RuleInfo, referenced: list[RuleInfo]) -> RuleInfo:
    """A correlation without tags or level takes those of the rules it correlates."""
    techniques = info.techniques or tuple(
        dict.fromkeys(t for ref in referenced for t in ref.techniques)
    )
    tactics = info.tactics or tuple(dict.fromkeys(t for ref in referenced for t in ref.tactics))
    level = info.level or max((ref.level for ref in referenced), key=_level_rank, default="")
    return RuleInfo(
        key=info.key,
        id=info.id,
        name=info.name,
        title=info.title,
        level=level,
        description=info.description,
        path=info.path,
        techniques=techniques,
        tactics=tactics,
    )


def _level_rank(level: str) -> int:
    return _LEVELS.index(level) if level in _LEVELS else 0
