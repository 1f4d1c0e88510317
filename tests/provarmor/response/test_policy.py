"""The policy parser: good files give typed policies; every bad one raises ParseError at
its file:line; arbitrary text never raises anything else (hypothesis)."""

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.errors import ParseError
from provarmor.response.policy import Mode, Policy, PolicyRule, parse_policy
from provarmor.response.records import ActionKind

GOOD = """\
version: 1
mode: enforce
rate_limit:
  actions: 5
  seconds: 60
host_groups:
  web: [web-1, web-2]
rules:
  - name: contain implants
    severity: high
    techniques: [T1059]
    host_groups: [web]
    actions: [kill, block, quarantine]
  - name: isolate on critical
    severity: critical
    actions: isolate
    isolate_release_seconds: 600
  - name: downloaded programs
    severity: medium
    lineage: [downloaded, remote-input]
    actions: [kill]
"""


def test_a_good_policy():
    policy = parse_policy(GOOD, source="p.yaml")
    assert policy.mode is Mode.ENFORCE
    assert (policy.rate_limit.actions, policy.rate_limit.seconds) == (5, 60.0)
    assert policy.host_groups == {"web": ("web-1", "web-2")}
    first, second, third = policy.rules
    assert first.actions == (ActionKind.KILL, ActionKind.BLOCK, ActionKind.QUARANTINE)
    assert second.actions == (ActionKind.ISOLATE,) and second.isolate_release_seconds == 600
    assert third.lineage == ("downloaded", "remote-input") and first.lineage == ()
    assert policy.groups_of("web-2", "") == {"web"}


def test_the_default_mode_is_dry_run():
    assert parse_policy("rules: []").mode is Mode.DRY_RUN


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("mode: on\n", 1, "is not one of off, dry-run, enforce"),
        ("version: 2\n", 1, "policy version 2"),
        ("rules:\n  - name: x\n    actions: [restore]\n", 3, "'restore' is not one of"),
        ("rules:\n  - name: x\n    actions: [kill]\n    colour: red\n", 4, "unknown key 'colour'"),
        ("rules:\n  - actions: [kill]\n", 2, "needs 'name'"),
        ("rules:\n  - name: x\n    actions: [kill]\n    host_groups: [db]\n", 4, "no host group"),
        ("rules:\n  - name: x\n    actions: [kill]\n    severity: huge\n", 4, "severity"),
        (
            "rules:\n  - name: x\n    actions: [kill]\n    lineage: [web]\n",
            4,
            "'web' is not one of",
        ),
        ("rate_limit:\n  actions: -1\n", 2, "at least 0"),
        ("rate_limit:\n  seconds: soon\n", 2, "must be a number"),
        ("mode: enforce\nmode: off\n", 2, "given twice"),
        ("rules: {a: 1}\n", 1, "rules must be a list"),
        ("a: [\n", 2, "not valid YAML"),
        ("", 1, "empty"),
        ("- 1\n", 1, "must be a mapping"),
    ],
)
def test_bad_policies_name_file_and_line(text, line, words):
    with pytest.raises(ParseError) as caught:
        parse_policy(text, source="policy.yaml")
    assert caught.value.location == f"policy.yaml:{line}"
    assert words in caught.value.message


def test_rule_matching():
    rule = PolicyRule(
        name="r",
        actions=(ActionKind.KILL,),
        severity="high",
        techniques=("T1059",),
        rule_ids=("sigma-1",),
        host_groups=("web",),
    )
    match = {"techniques": {"T1059.004"}, "rule_ids": {"sigma-1"}, "groups": {"web"}}
    assert rule.matches(severity="critical", **match)
    assert not rule.matches(severity="medium", **match)
    assert not rule.matches(severity="high", **{**match, "techniques": {"T1105"}})
    assert not rule.matches(severity="high", **{**match, "rule_ids": {"other"}})
    assert not rule.matches(severity="high", **{**match, "groups": set()})
    assert PolicyRule(name="any", actions=()).matches(
        severity="low", techniques=set(), rule_ids=set(), groups=set()
    )


def test_lineage_matching():
    """A lineage condition needs a signal raised in one of its contexts; without one (or
    with signals of other contexts only) the rule does not match, whatever the severity."""
    rule = PolicyRule(
        name="dropped", actions=(ActionKind.KILL,), severity="medium", lineage=("downloaded",)
    )
    base = {"techniques": set(), "rule_ids": set(), "groups": set()}
    assert rule.matches(severity="medium", contexts={"none", "downloaded"}, **base)
    assert not rule.matches(severity="critical", contexts={"admin", "server-child"}, **base)
    assert not rule.matches(severity="critical", **base)
    assert not rule.matches(severity="low", contexts={"downloaded"}, **base)


def assert_parses_or_locates(text: str) -> None:
    """A policy comes out, or a ParseError located in the file (nothing else escapes)."""
    try:
        policy = parse_policy(text, source="fuzz")
    except ParseError as exc:
        location = exc.location or ""
    else:
        assert isinstance(policy, Policy)
        return
    assert location.startswith("fuzz:")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_only_parse_errors(text):
    assert_parses_or_locates(text)


KEYS = st.sampled_from(["mode", "rules", "version", "rate_limit", "host_groups", "name"])
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=5)), inner, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_arbitrary_structures_raise_only_parse_errors(document):
    assert_parses_or_locates(yaml.safe_dump(document))
