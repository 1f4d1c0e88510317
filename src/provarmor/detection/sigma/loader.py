"""Read Sigma rule files into pySigma rule objects; every problem becomes a :class:`RuleError`.

A file may hold several YAML documents (rules, correlations, filters). Each document is
parsed on its own with pySigma, so one bad document never hides the good ones around it.
Errors name the file and the rule field at fault (``rules/x.yml:detection.sel.Image|foo``),
or the line for YAML syntax errors (``rules/x.yml:12``); nothing raises past this module.

Two things are checked before pySigma sees a document: detection keys (so an unknown
modifier is reported with its exact key) and a correlation ``condition`` that gives a range
(``gt`` and ``lte`` together, which the Sigma correlation specification allows and pySigma
does not): the full mapping is kept in :attr:`RuleSource.correlation_condition` and pySigma
gets its first bound only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sigma import exceptions as sigma_errors
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaRule
from sigma.rule.base import SigmaYAMLLoader

from provarmor.model.errors import RuleError

CORRELATION_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSource:
    """One parsed rule document and where it came from."""

    rule: SigmaRule | SigmaCorrelationRule
    path: str
    document: int
    """1-based position of the YAML document in its file."""
    correlation_condition: dict[str, object] | None = None

    def location(self, field_name: str) -> str:
        """``file:field``, or ``file#n:field`` for the n-th document of a file (n > 1)."""
        return _location(self.path, self.document, field_name=field_name)

    @property
    def label(self) -> str:
        """A human name for reports: the rule id, else its name, else file and document."""
        if self.rule.id is not None:
            return str(self.rule.id)
        if self.rule.name:
            return self.rule.name
        return f"{self.path}#{self.document}"


@dataclass(slots=True)
class ParsedRules:
    """Everything read from a set of files."""

    sources: list[RuleSource] = field(default_factory=list)
    filters: list[SigmaFilter] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    files: int = 0

    def extend(self, other: ParsedRules) -> None:
        self.sources.extend(other.sources)
        self.filters.extend(other.filters)
        self.errors.extend(other.errors)
        self.files += other.files


def bundled_rules() -> Path:
    """The rule pack shipped with ProvArmor (package data)."""
    return Path(str(resources.files("provarmor.data") / "rules"))


def load_rule_paths(paths: Iterable[Path]) -> ParsedRules:
    """Parse files and, recursively, the ``*.yml``/``*.yaml`` files of directories."""
    parsed = ParsedRules()
    for path in _rule_files(paths):
        parsed.extend(load_rule_file(path))
    return parsed


def _rule_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml"))
        else:
            yield path


def load_rule_file(path: Path) -> ParsedRules:
    """Parse one file; unreadable files and bad documents become errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        parsed = ParsedRules(files=1)
        parsed.errors.append(RuleError(f"cannot read rule file: {error}", location=str(path)))
        return parsed
    parsed = parse_rules(text, path=str(path))
    parsed.files = 1
    return parsed


def parse_rules(text: str, *, path: str) -> ParsedRules:
    """Parse the YAML documents of one rule file (``path`` only names it in errors).

    Documents before a YAML syntax error are kept; the error ends the file.
    """
    parsed = ParsedRules()
    documents: list[object] = []
    try:
        # SigmaYAMLLoader is PyYAML's CSafeLoader that also rejects duplicate keys.
        for document in yaml.load_all(text, Loader=SigmaYAMLLoader):
            documents.append(document)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark is not None else 0
        parsed.errors.append(RuleError(f"bad YAML: {error.problem}", location=f"{path}:{line}"))
    except yaml.YAMLError as error:
        parsed.errors.append(RuleError(f"bad YAML: {error}", location=path))
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        try:
            _parse_document(document, path=path, index=index, into=parsed)
        except RuleError as error:
            parsed.errors.append(error)
    return parsed


def _parse_document(document: object, *, path: str, index: int, into: ParsedRules) -> None:
    where = _location(path, index, field_name="")
    if not isinstance(document, dict):
        raise RuleError("a rule document must be a mapping", location=f"{where}document")
    if "action" in document:
        raise RuleError(
            f"Sigma v1 collection action '{document['action']}' is not supported",
            location=f"{where}action",
        )
    condition: dict[str, object] | None = None
    try:
        if "filter" in document:
            into.filters.append(_checked(SigmaFilter.from_dict(document, collect_errors=True)))
            return
        if "correlation" in document:
            document, condition = _split_range_condition(document, where=where)
            rule: SigmaRule | SigmaCorrelationRule = _checked(
                SigmaCorrelationRule.from_dict(document, collect_errors=True)
            )
        else:
            document = _check_detection(document, where=where)
            rule = _checked(SigmaRule.from_dict(document, collect_errors=True))
    except RuleError:
        raise
    except SigmaError as error:
        raise RuleError(_message(error), location=f"{where}{_field_of(error)}") from None
    except Exception as error:  # pySigma on input it did not foresee: still the rule's fault
        raise RuleError(f"cannot parse rule: {error!r}", location=f"{where}document") from None
    into.sources.append(
        RuleSource(rule=rule, path=path, document=index, correlation_condition=condition)
    )


_Parsed = TypeVar("_Parsed", SigmaRule, SigmaCorrelationRule, SigmaFilter)


def _location(path: str, document: int, *, field_name: str) -> str:
    return f"{path}:{field_name}" if document == 1 else f"{path}#{document}:{field_name}"


def _checked(rule: _Parsed) -> _Parsed:
    if rule.errors:
        raise rule.errors[0]
    return rule


_MODIFIER_ALIASES = {"utf16le": "wide"}
"""Modifiers of the Sigma specification that pySigma spells differently."""


def _check_detection(document: dict[Any, Any], *, where: str) -> dict[Any, Any]:
    """Name the exact detection key of an unknown modifier, and a missing condition; return
    the document with modifier aliases spelled the pySigma way."""
    detection = document.get("detection")
    if detection is None:
        raise RuleError("rule has no detection", location=f"{where}detection")
    if not isinstance(detection, dict):
        raise RuleError("detection must be a mapping", location=f"{where}detection")
    if "condition" not in detection:
        raise RuleError("detection has no condition", location=f"{where}detection.condition")
    renamed = {}
    for name, definition in detection.items():
        if name in ("condition", "timeframe"):
            renamed[name] = definition
            continue
        for key in _detection_keys(definition):
            for modifier in str(key).split("|")[1:]:
                if modifier not in modifier_mapping and modifier not in _MODIFIER_ALIASES:
                    raise RuleError(
                        f"unknown modifier '{modifier}'", location=f"{where}detection.{name}.{key}"
                    )
        renamed[name] = _renamed_keys(definition)
    return {**document, "detection": renamed}


def _renamed_keys(definition: object) -> object:
    if isinstance(definition, dict):
        return {_renamed_key(key): value for key, value in definition.items()}
    if isinstance(definition, list):
        return [_renamed_keys(item) if isinstance(item, dict) else item for item in definition]
    return definition


def _renamed_key(key: object) -> object:
    if not isinstance(key, str) or "|" not in key:
        return key
    field, *modifiers = key.split("|")
    return "|".join([field, *(_MODIFIER_ALIASES.get(m, m) for m in modifiers)])


def _detection_keys(definition: object) -> Iterator[object]:
    if isinstance(definition, dict):
        yield from definition.keys()
    elif isinstance(definition, list):
        for item in definition:
            if isinstance(item, dict):
                yield from item.keys()


def _split_range_condition(
    document: dict[Any, Any], *, where: str
) -> tuple[dict[Any, Any], dict[str, object] | None]:
    correlation = document.get("correlation")
    if not isinstance(correlation, dict):
        return document, None
    condition = correlation.get("condition")
    if not isinstance(condition, dict):
        return document, None
    bounds = [op for op in CORRELATION_OPERATORS if op in condition]
    if len(bounds) < 2:
        return document, dict(condition)
    first = {key: value for key, value in condition.items() if key not in bounds[1:]}
    patched = {**document, "correlation": {**correlation, "condition": first}}
    return patched, dict(condition)


def _message(error: SigmaError) -> str:
    return str(error.args[0]) if error.args else type(error).__name__


_FIELD_OF_ERROR: tuple[tuple[type[SigmaError], str], ...] = (
    (sigma_errors.SigmaTimespanError, "correlation.timespan"),
    (sigma_errors.SigmaCorrelationConditionError, "correlation.condition"),
    (sigma_errors.SigmaCorrelationTypeError, "correlation.type"),
    (sigma_errors.SigmaCorrelationRuleError, "correlation"),
    (sigma_errors.SigmaFilterError, "filter"),
    (sigma_errors.SigmaConditionError, "detection.condition"),
    (sigma_errors.SigmaModifierError, "detection"),
    (sigma_errors.SigmaDetectionError, "detection"),
    (sigma_errors.SigmaValueError, "detection"),
    (sigma_errors.SigmaLogsourceError, "logsource"),
    (sigma_errors.SigmaTitleError, "title"),
    (sigma_errors.SigmaIdentifierError, "id"),
    (sigma_errors.SigmaNameError, "name"),
    (sigma_errors.SigmaLevelError, "level"),
    (sigma_errors.SigmaStatusError, "status"),
    (sigma_errors.SigmaDateError, "date"),
    (sigma_errors.SigmaModifiedError, "modified"),
    (sigma_errors.SigmaTagError, "tags"),
    (sigma_errors.SigmaAuthorError, "author"),
    (sigma_errors.SigmaDescriptionError, "description"),
    (sigma_errors.SigmaReferencesError, "references"),
    (sigma_errors.SigmaFieldsError, "fields"),
    (sigma_errors.SigmaFalsePositivesError, "falsepositives"),
    (sigma_errors.SigmaRelatedError, "related"),
    (sigma_errors.SigmaLicenseError, "license"),
    (sigma_errors.SigmaScopeError, "scope"),
    (sigma_errors.SigmaTaxonomyError, "taxonomy"),
)


def _field_of(error: SigmaError) -> str:
    for error_type, name in _FIELD_OF_ERROR:
        if isinstance(error, error_type):
            return name
    return "document"
