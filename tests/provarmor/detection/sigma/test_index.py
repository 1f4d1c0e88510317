"""Dispatch: an event meets only the rules of its action, program and audit record type."""

from __future__ import annotations

from provarmor.detection.sigma.compiler import compile_rule
from provarmor.detection.sigma.index import RuleIndex, RuleMemo
from provarmor.detection.sigma.loader import parse_rules
from provarmor.detection.sigma.records import Record
from provarmor.model.actions import Action
from provarmor.model.attack import load_attack_table

RULES = """title: wget
logsource: {product: linux, category: process_creation}
detection: {sel: {Image|endswith: /wget}, condition: sel}
---
title: any exec
logsource: {product: linux, category: process_creation}
detection: {sel: {CommandLine|contains: x}, condition: sel}
---
title: file
logsource: {product: linux, category: file_event}
detection: {sel: {TargetFilename|startswith: /etc/}, condition: sel}
---
title: keywords
logsource: {product: linux}
detection: {kw: [evil], condition: kw}
---
title: execve
logsource: {product: linux, service: auditd}
detection: {sel: {type: EXECVE, a0: x}, condition: sel}
---
title: any record
logsource: {product: linux, service: auditd}
detection: {sel: {key: k}, condition: sel}
"""


def index() -> RuleIndex:
    attack = load_attack_table()
    return RuleIndex(compile_rule(s, attack=attack) for s in parse_rules(RULES, path="r").sources)


def titles(rules):
    return [rule.info.title for rule in rules]


def test_rules_by_action_and_keyword_text():
    sizes = index().sizes()
    assert sizes["exec"] == 3
    assert sizes["write"] == 2  # the file rule and the keyword rule
    assert "open" not in sizes  # opens have no keyword text and no rule for them
    assert sizes["auditd"] == 2


def test_rules_pinned_to_a_program_meet_only_its_events():
    bucket = index().event_bucket(Action.EXEC)
    assert bucket is not None
    assert titles(bucket.rules_for(Record({"image": "/usr/bin/WGET"}))) == [
        "wget",
        "any exec",
        "keywords",
    ]
    assert titles(bucket.rules_for(Record({"image": "/usr/bin/curl"}))) == ["any exec", "keywords"]
    assert titles(bucket.rules_for(Record({}))) == ["any exec", "keywords"]


def test_audit_rules_by_record_type():
    rules = index()
    assert titles(rules.audit_rules("EXECVE")) == ["execve", "any record"]
    assert titles(rules.audit_rules("PATH")) == ["any record"]


def test_the_memo_is_bounded_and_counts_what_it_answered():
    memo = RuleMemo(capacity=2)
    keys = [((f"/bin/{name}",), ()) for name in "abc"]
    for key in keys:
        assert memo.get(key) is None
        memo.put(key, ())
    assert memo.get(keys[2]) == ()
    assert memo.get(keys[0]) is None  # started over when the third came
    assert (memo.hits, memo.misses, memo.resets, len(memo.matched)) == (1, 4, 1, 1)


def test_the_memo_keeps_no_long_record():
    memo = RuleMemo(max_chars=20)
    short, long = (("/bin/sh", None), ("sh -c id",)), (("/bin/sh", "x" * 10), ("y" * 10,))
    memo.put(short, ())
    memo.put(long, ())
    assert memo.get(short) == ()
    assert memo.get(long) is None
    assert (memo.too_long, len(memo.matched)) == (1, 1)


def test_no_rule_meets_a_running_snapshot():
    """A product-only rule meets every action, but not ``running`` (a process that was
    already running when the sensor started: no act)."""
    rules = parse_rules(
        "title: nc\nlogsource: {product: linux}\n"
        "detection: {sel: {Image|endswith: /nc}, condition: sel}\n",
        path="r",
    ).sources
    anywhere = RuleIndex(compile_rule(source, attack=load_attack_table()) for source in rules)
    assert anywhere.event_bucket(Action.EXEC) is not None
    assert anywhere.event_bucket(Action.OPEN) is not None
    assert anywhere.event_bucket(Action.RUNNING) is None
