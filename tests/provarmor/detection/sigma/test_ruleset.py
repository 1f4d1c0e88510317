"""build_ruleset: every rule loaded, unsupported or an error; silent rules; odd input."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.detection.sigma.loader import parse_rules
from provarmor.detection.sigma.ruleset import build_ruleset
from provarmor.model.attack import load_attack_table
from provarmor.model.errors import RuleError


def test_silent_rules_and_loaded_entries():
    text = """title: base
name: base
logsource: {product: linux, category: process_creation}
detection: {sel: {Image: /x}, condition: sel}
---
title: corr
correlation: {type: event_count, rules: [base], group-by: [User], timespan: 1m,
              condition: {gte: 2}}
tags: [attack.t9999]
"""
    parsed = parse_rules(text, path="r.yml")
    ruleset, report = build_ruleset(parsed, attack=load_attack_table())
    assert ruleset.silent == {"base"}
    assert [(r.key, r.log_source) for r in report.loaded] == [
        ("base", "process_creation"),
        ("r.yml#2", "correlation"),
    ]
    assert report.warnings == ["r.yml: unknown ATT&CK tag attack.t9999"]
    assert report.loaded_fraction == 1.0


def test_sigma_filters_are_applied(sigma, exec_of):
    text = """title: shells
id: 1e0c3f7a-0000-4000-8000-0000000000f1
logsource: {product: linux, category: process_creation}
detection: {sel: {Image|endswith: /sh}, condition: sel}
---
title: not from cron
filter:
    rules: [1e0c3f7a-0000-4000-8000-0000000000f1]
    selection: {ParentImage|endswith: /cron}
    condition: not selection
logsource: {product: linux, category: process_creation}
"""
    detector = sigma(text)
    assert detector.on_event(exec_of("sh", exe="/bin/sh", parent_exe="/usr/sbin/sshd"))
    assert not detector.on_event(exec_of("sh", exe="/bin/sh", parent_exe="/usr/sbin/cron"))


documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["sel", "Image", "Image|re", "CommandLine|contains", "a0", "|all"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    documents,
    st.sampled_from(["sel", "sel and not sel", "1 of them", "x"]),
    st.sampled_from(["category: process_creation", "service: auditd", "category: x"]),
)
def test_odd_detections_give_reports_not_exceptions(detection, condition, logsource):
    document = {
        "title": "fuzz",
        "logsource": yaml.safe_load(f"{{product: linux, {logsource}}}"),
        "detection": {"sel": detection, "condition": condition},
    }
    parsed = parse_rules(yaml.safe_dump(document), path="f.yml")
    _, report = build_ruleset(parsed, attack=load_attack_table())
    assert report.total == 1
    assert all(isinstance(error, RuleError) for error in report.errors)


def test_duplicate_rule_ids_are_errors():
    rule = (
        "title: {title}\nid: 2a2a2a2a-0000-4000-8000-000000000001\n"
        "logsource: {{product: linux, category: process_creation}}\n"
        "detection: {{sel: {{Image: /x}}, condition: sel}}\n"
    )
    text = rule.format(title="first") + "---\n" + rule.format(title="second")
    ruleset, report = build_ruleset(parse_rules(text, path="d.yml"), attack=load_attack_table())
    assert [r.info.title for r in ruleset.rules] == ["first"]
    (error,) = report.errors
    assert error.location == "d.yml#2:id"
