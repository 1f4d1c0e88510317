"""Merged predicates behave like the OR/AND of their parts."""

from __future__ import annotations

from provarmor.detection.sigma.predicates import (
    PatternTest,
    StringTest,
    as_predicate,
    merge_all,
    merge_any,
)
from provarmor.detection.sigma.records import Record


def image(value: str) -> Record:
    return Record({"image": value}, (value,))


def test_or_of_equalities_prefixes_and_suffixes():
    predicate = as_predicate(
        merge_any(
            [
                StringTest(key="image", op="eq", text="/bin/sh", cased=False),
                StringTest(key="image", op="eq", text="/bin/bash", cased=False),
                StringTest(key="image", op="prefix", text="/tmp/", cased=False),
                StringTest(key="image", op="suffix", text="/nc", cased=False),
                StringTest(key="image", op="contains", text="/.x/", cased=False),
                StringTest(key="image", op="contains", text="/.y/", cased=False),
            ]
        )
    )
    for value in ("/BIN/SH", "/bin/bash", "/tmp/a", "/usr/bin/nc", "/a/.x/b", "/a/.y/b"):
        assert predicate(image(value)), value
    for value in ("/bin/dash", "/var/tmp/a", "/usr/bin/ncat", "/a/.z/b"):
        assert not predicate(image(value)), value
    assert not predicate(Record({}))


def test_or_of_patterns_is_one_regex_with_whole_match():
    predicate = as_predicate(
        merge_any(
            [
                PatternTest(key="image", source="/usr/.*/wg.t", folded=True, whole=True),
                PatternTest(key="image", source="/opt/.*", folded=True, whole=True),
            ]
        )
    )
    assert predicate(image("/usr/local/bin/wget"))
    assert predicate(image("/opt/x"))
    assert not predicate(image("/usr/local/bin/wget2"))


def test_and_of_contains_and_cased_tests():
    predicate = as_predicate(
        merge_all(
            [
                StringTest(key="image", op="contains", text="a", cased=False),
                StringTest(key="image", op="contains", text="b", cased=False),
                StringTest(key="image", op="contains", text="C", cased=True),
            ]
        )
    )
    assert predicate(image("xaBC"))
    assert not predicate(image("xabc"))  # C must be upper case
    assert not predicate(image("xaC"))


def test_keyword_tests_search_the_text():
    any_of = as_predicate(
        merge_any(
            [
                StringTest(key=None, op="contains", text="evil", cased=False),
                StringTest(key=None, op="contains", text="bad", cased=False),
            ]
        )
    )
    assert any_of(Record({}, ("an EVIL thing",)))
    assert not any_of(Record({}, ("good",)))
    all_of = as_predicate(
        merge_all(
            [
                StringTest(key=None, op="contains", text="a", cased=False),
                StringTest(key=None, op="contains", text="z", cased=False),
            ]
        )
    )
    assert all_of(Record({}, ("a", "z")))  # in different texts is fine
    assert not all_of(Record({}, ("a",)))
    anything = as_predicate(StringTest(key=None, op="any", text="", cased=False))
    assert anything(Record({}, ("x",)))
    assert not anything(Record({}))
