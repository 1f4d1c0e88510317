"""Compile a Sigma detection (pySigma's condition tree) into one fast Python predicate.

Each rule is compiled once: string values are folded to lower case up front, wildcard
patterns become plain ``==``/``startswith``/``endswith``/``in`` tests where their shape
allows and precompiled regular expressions otherwise, and the OR-lists Sigma rules are full
of (``Image|endswith: [...]``) collapse into a single set look-up or tuple test. Evaluating
a rule on a :class:`Record` is then a few closure calls; nothing reads YAML per event.

Semantics follow the Sigma specification: case-insensitive by default (``cased`` opts
out), ``re`` is a case-sensitive unanchored search with the ``i``/``m``/``s`` flags, keyword
(field-less) values are searched anywhere in the record's text, ``null`` and ``exists`` test
presence. Anything the engine cannot honour raises :class:`UnsupportedRule` with a reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from provarmor.detection.sigma.predicates import (
    Compiled,
    PatternTest,
    Predicate,
    StringOp,
    StringTest,
    as_predicate,
    merge_all,
    merge_any,
    regex_predicate,
)
from provarmor.detection.sigma.records import Record

ConditionNode = ConditionItem | ConditionFieldEqualsValueExpression | ConditionValueExpression


class UnsupportedRule(Exception):
    """The rule is valid Sigma but uses something this engine cannot evaluate faithfully."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


FieldResolver = Callable[[str], str]
"""Maps a rule's field name onto the record key, raising UnsupportedRule if unknown."""


def compile_detection(conditions: Sequence[ConditionNode], *, resolve: FieldResolver) -> Predicate:
    """One predicate for a rule: its conditions (usually one) OR-ed together."""
    return as_predicate(merge_any([_compile(node, resolve) for node in conditions]))


def _compile(node: ConditionNode, resolve: FieldResolver) -> Compiled:
    if isinstance(node, ConditionAND):
        return merge_all([_compile(_arg(arg), resolve) for arg in node.args])
    if isinstance(node, ConditionOR):
        return merge_any([_compile(_arg(arg), resolve) for arg in node.args])
    if isinstance(node, ConditionNOT):
        inner = as_predicate(_compile(_arg(node.args[0]), resolve))
        return lambda record: not inner(record)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        try:
            return _field_value(resolve(node.field), node.value, resolve=resolve)
        except UnsupportedRule as error:
            if error.reason.startswith("field "):
                raise
            raise UnsupportedRule(f"field '{node.field}': {error.reason}") from None
    if isinstance(node, ConditionValueExpression):
        return _keyword_value(node.value)
    raise UnsupportedRule(f"condition element {type(node).__name__} is not supported")


def _arg(arg: object) -> ConditionNode:
    if isinstance(arg, ConditionItem | ConditionFieldEqualsValueExpression):
        return arg
    if isinstance(arg, ConditionValueExpression):
        return arg
    raise UnsupportedRule(f"unresolved condition element {arg!r}")


# ---------------------------------------------------------------------------- field values


def _field_value(key: str, value: SigmaType, *, resolve: FieldResolver) -> Compiled:
    if isinstance(value, SigmaExpansion):
        return merge_any([_field_value(key, item, resolve=resolve) for item in value.values])
    if isinstance(value, SigmaString):
        return _string(key, value, cased=isinstance(value, SigmaCasedString))
    if isinstance(value, SigmaTimestampPart):
        raise UnsupportedRule("timestamp part modifiers (minute, hour, day ...) are not supported")
    if isinstance(value, SigmaNumber):
        return StringTest(key=key, op="eq", text=str(value.number).lower(), cased=False)
    if isinstance(value, SigmaBool):
        return StringTest(key=key, op="eq", text="true" if value.boolean else "false", cased=False)
    if isinstance(value, SigmaNull):
        return lambda record: key not in record.values
    if isinstance(value, SigmaExists):
        wanted = bool(value.exists)
        return lambda record: (key in record.values) is wanted
    if isinstance(value, SigmaRegularExpression):
        return _regex(key, value)
    if isinstance(value, SigmaCompareExpression):
        return _compare(key, value)
    if isinstance(value, SigmaCIDRExpression):
        return _cidr(key, value)
    if isinstance(value, SigmaFieldReference):
        return _field_reference(key, value, other=resolve(value.field))
    raise UnsupportedRule(f"value type {type(value).__name__} is not supported")


def _string(key: str | None, value: SigmaString, *, cased: bool) -> Compiled:
    parts: list[str | SpecialChars] = []
    for part in value.s:
        if not isinstance(part, str | SpecialChars):
            raise UnsupportedRule(
                f"placeholder %{getattr(part, 'name', part)}% (expand modifier) needs a value list"
            )
        parts.append(part if cased or not isinstance(part, str) else part.lower())
    if any(isinstance(part, str) and "\x00" in part for part in parts):
        raise UnsupportedRule(
            "UTF-16 text (utf16/utf16le/utf16be/wide without base64) never occurs in Linux events"
        )
    if key is None:  # keywords are searched anywhere in the text
        while parts and parts[0] is SpecialChars.WILDCARD_MULTI:
            parts.pop(0)
        while parts and parts[-1] is SpecialChars.WILDCARD_MULTI:
            parts.pop()
        parts = [SpecialChars.WILDCARD_MULTI, *parts, SpecialChars.WILDCARD_MULTI]
    return _string_shape(key, parts, cased=cased)


def _string_shape(key: str | None, parts: list[str | SpecialChars], *, cased: bool) -> Compiled:
    star = SpecialChars.WILDCARD_MULTI
    inner = parts[:]
    lead = bool(inner) and inner[0] is star
    if lead:
        inner.pop(0)
    trail = bool(inner) and inner[-1] is star
    if trail:
        inner.pop()
    if not inner and (lead or trail):
        return StringTest(key=key, op="any", text="", cased=cased)
    if all(isinstance(part, str) for part in inner):
        text = "".join(part for part in inner if isinstance(part, str))
        op: StringOp = (
            "contains" if lead and trail else "suffix" if lead else "prefix" if trail else "eq"
        )
        if op == "eq" and not text and key is not None:  # '' is how events spell "unknown"
            return lambda record: key not in record.values
        return StringTest(key=key, op=op, text=text, cased=cased)
    if key is None:  # a search: the outer wildcards add nothing
        source = "".join(_wildcard_regex(part) for part in inner)
        return PatternTest(key=None, source=source, folded=not cased, whole=False)
    source = "".join(_wildcard_regex(part) for part in parts)
    return PatternTest(key=key, source=source, folded=not cased, whole=True)


def _wildcard_regex(part: str | SpecialChars) -> str:
    if part is SpecialChars.WILDCARD_MULTI:
        return ".*"
    if part is SpecialChars.WILDCARD_SINGLE:
        return "."
    assert isinstance(part, str)
    return re.escape(part)


_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


def _compile_regex(value: SigmaRegularExpression) -> re.Pattern[str]:
    flags = 0
    for flag in value.flags:
        flags |= _REGEX_FLAGS[flag]
    pattern = value.regexp.to_plain(regex=True)
    try:
        return re.compile(pattern, flags)
    except re.error as error:
        raise UnsupportedRule(f"regular expression '{pattern}': {error}") from error


def _regex(key: str | None, value: SigmaRegularExpression) -> Predicate:
    if value.contains_placeholder():
        raise UnsupportedRule("placeholder in regular expression (expand modifier)")
    return regex_predicate(key, _compile_regex(value), folded=False)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        try:
            return float(int(text, 0))
        except ValueError:
            return None


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def _compare(key: str, value: SigmaCompareExpression) -> Predicate:
    limit = float(value.number.number)
    operator = _COMPARE[value.op]

    def compare(record: Record) -> bool:
        text = record.values.get(key)
        number = None if text is None else _number(text)
        return number is not None and operator(number, limit)

    return compare


def _cidr(key: str, value: SigmaCIDRExpression) -> Predicate:
    network = value.network

    def in_network(record: Record) -> bool:
        text = record.values.get(key)
        if text is None:
            return False
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.version == network.version and address in network

    return in_network


def _field_reference(key: str, value: SigmaFieldReference, *, other: str) -> Predicate:
    starts, ends = value.starts_with, value.ends_with

    def compare(record: Record) -> bool:
        mine, theirs = record.folded.get(key), record.folded.get(other)
        if mine is None or theirs is None:
            return False
        if starts and ends:
            return theirs in mine
        if starts:
            return mine.startswith(theirs)
        if ends:
            return mine.endswith(theirs)
        return mine == theirs

    return compare


def _keyword_value(value: SigmaType) -> Compiled:
    if isinstance(value, SigmaExpansion):
        return merge_any([_keyword_value(item) for item in value.values])
    if isinstance(value, SigmaString):
        return _string(None, value, cased=isinstance(value, SigmaCasedString))
    if isinstance(value, SigmaNumber | SigmaBool):
        text = str(value.number) if isinstance(value, SigmaNumber) else str(value.boolean)
        return StringTest(key=None, op="contains", text=text.lower(), cased=False)
    if isinstance(value, SigmaRegularExpression):
        return _regex(None, value)
    raise UnsupportedRule(f"keyword value of type {type(value).__name__} is not supported")
