"""Predicates: the closures compiled Sigma rules run, and the merging that keeps them few.

:mod:`.evaluator` turns each Sigma value into a :class:`StringTest` (plain comparison), a
:class:`PatternTest` (wildcard pattern) or a ready predicate. Here OR-lists of string tests on
one field collapse into a single set look-up or ``startswith``/``endswith`` tuple test, OR-lists
of patterns into one regular expression, ``contains|all`` lists into one loop; what is left
becomes small closures over :class:`Record`. Loops are written out where they beat ``any()``
over a generator, because these run once per rule per event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from provarmor.detection.sigma.records import Record

Predicate = Callable[[Record], bool]
StringOp = Literal["eq", "prefix", "suffix", "contains", "any"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StringTest:
    """A plain string comparison; kept apart from predicates so OR/AND lists can merge."""

    key: str | None
    """Record field, or None for a keyword search over the record's text."""
    op: StringOp
    text: str
    cased: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PatternTest:
    """A wildcard value as a regular expression source (merged like :class:`StringTest`)."""

    key: str | None
    source: str
    folded: bool
    whole: bool
    """Full match (field values) rather than search (keyword text)."""


Compiled = Predicate | StringTest | PatternTest


def regex_predicate(
    key: str | None, pattern: re.Pattern[str], *, folded: bool, whole: bool = False
) -> Predicate:
    """Search (or, with ``whole``, full-match) ``pattern`` in a field or the keyword text."""
    test = pattern.fullmatch if whole else pattern.search
    if key is None:
        if folded:
            return lambda record: any(test(text) for text in record.folded_text)
        return lambda record: any(test(text) for text in record.text)
    if folded:
        return lambda record: (v := record.folded.get(key)) is not None and test(v) is not None
    return lambda record: (v := record.values.get(key)) is not None and test(v) is not None


def merge_any(items: list[Compiled]) -> Compiled:
    """OR: string tests on the same field and operation collapse into one test, and wildcard
    patterns on the same field into one regular expression."""
    if len(items) == 1:
        return items[0]
    groups: dict[tuple[str | None, StringOp, bool], list[str]] = {}
    patterns: dict[tuple[str | None, bool, bool], list[str]] = {}
    predicates: list[Predicate] = []
    for item in items:
        if isinstance(item, StringTest) and item.op != "any":
            groups.setdefault((item.key, item.op, item.cased), []).append(item.text)
        elif isinstance(item, PatternTest):
            patterns.setdefault((item.key, item.folded, item.whole), []).append(item.source)
        else:
            predicates.append(as_predicate(item))
    merged = [
        _any_text_predicate(key, op, texts=tuple(dict.fromkeys(texts)), cased=cased)
        for (key, op, cased), texts in groups.items()
    ]
    merged.extend(
        _pattern_predicate(
            PatternTest(
                key=key,
                source="|".join(f"(?:{s})" for s in sources),
                folded=folded,
                whole=whole,
            )
        )
        for (key, folded, whole), sources in patterns.items()
    )
    return _any(merged + predicates)


def merge_all(items: list[Compiled]) -> Compiled:
    """AND: ``contains`` tests on the same field (``|contains|all``) collapse into one."""
    if len(items) == 1:
        return items[0]
    groups: dict[tuple[str | None, bool], list[str]] = {}
    predicates: list[Predicate] = []
    for item in items:
        if isinstance(item, StringTest) and item.op == "contains":
            groups.setdefault((item.key, item.cased), []).append(item.text)
        else:
            predicates.append(as_predicate(item))
    for (key, cased), texts in groups.items():
        predicates.append(_all_contained_predicate(key, tuple(texts), cased=cased))
    return _all(predicates)


def as_predicate(item: Compiled) -> Predicate:
    if isinstance(item, StringTest):
        return _string_predicate(item)
    if isinstance(item, PatternTest):
        return _pattern_predicate(item)
    return item


def _pattern_predicate(test: PatternTest) -> Predicate:
    pattern = re.compile(test.source, re.DOTALL)
    return regex_predicate(test.key, pattern, folded=test.folded, whole=test.whole)


def _string_predicate(test: StringTest) -> Predicate:
    if test.op == "any":
        key = test.key
        if key is None:
            return lambda record: bool(record.text)
        return lambda record: key in record.values
    return _any_text_predicate(test.key, test.op, texts=(test.text,), cased=test.cased)


def _any_text_predicate(
    key: str | None, op: StringOp, *, texts: tuple[str, ...], cased: bool
) -> Predicate:
    if key is None:
        return _keyword_predicate(texts, cased=cased)
    folded = _folded_text_predicate(key, op, texts=texts)
    if not cased:
        return folded
    return lambda record: folded(_RawView(record))


class _RawView(Record):
    """A record whose folded values are the raw ones, for the rare ``cased`` test."""

    __slots__ = ()

    def __init__(self, record: Record) -> None:  # no folding: reuse the raw values
        self.values = record.values
        self.folded = record.values
        self.text = record.text
        self.folded_text = record.text


def _folded_text_predicate(key: str, op: StringOp, *, texts: tuple[str, ...]) -> Predicate:
    if op == "eq":
        if len(texts) == 1:
            (text,) = texts
            return lambda record: record.folded.get(key) == text
        members = frozenset(texts)
        return lambda record: record.folded.get(key) in members
    if op == "prefix":
        return lambda record: (v := record.folded.get(key)) is not None and v.startswith(texts)
    if op == "suffix":
        return lambda record: (v := record.folded.get(key)) is not None and v.endswith(texts)
    if len(texts) == 1:
        (text,) = texts
        return lambda record: (v := record.folded.get(key)) is not None and text in v

    def contains_any(record: Record) -> bool:
        value = record.folded.get(key)
        if value is None:
            return False
        for text in texts:  # noqa: SIM110  (faster than any() over a generator)
            if text in value:
                return True
        return False

    return contains_any


def _keyword_predicate(texts: tuple[str, ...], *, cased: bool) -> Predicate:
    def keyword(record: Record) -> bool:
        for item in record.text if cased else record.folded_text:
            for text in texts:
                if text in item:
                    return True
        return False

    return keyword


def _all_contained_predicate(key: str | None, texts: tuple[str, ...], *, cased: bool) -> Predicate:
    if key is None:

        def all_keywords(record: Record) -> bool:
            haystack = record.text if cased else record.folded_text
            return all(any(text in item for item in haystack) for text in texts)

        return all_keywords

    def all_contained(record: Record) -> bool:
        value = (record.values if cased else record.folded).get(key)
        return value is not None and all(text in value for text in texts)

    return all_contained


def _any(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda record: first(record) or second(record)
    items = tuple(predicates)

    def any_of(record: Record) -> bool:
        for predicate in items:  # noqa: SIM110  (faster than any() over a generator)
            if predicate(record):
                return True
        return False

    return any_of


def _all(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda record: first(record) and second(record)
    items = tuple(predicates)

    def all_of(record: Record) -> bool:
        for predicate in items:  # noqa: SIM110  (faster than all() over a generator)
            if not predicate(record):
                return False
        return True

    return all_of
