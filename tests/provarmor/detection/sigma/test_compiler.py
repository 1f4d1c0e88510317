"""compile_rule: log source, fields read, dispatch hints and ATT&CK from tags."""

from __future__ import annotations

import pytest

from provarmor.detection.sigma.compiler import compile_rule
from provarmor.detection.sigma.evaluator import UnsupportedRule
from provarmor.detection.sigma.loader import parse_rules
from provarmor.model.attack import load_attack_table
from provarmor.model.errors import RuleError


def compiled(detection: str, *, logsource: str = "category: process_creation", tags: str = ""):
    text = (
        f"title: t\nid: 9a1d2b7e-0000-4000-8000-00000000000a\n{tags}"
        f"logsource:\n  product: linux\n  {logsource}\ndetection:\n{detection}"
    )
    parsed = parse_rules(text, path="r.yml")
    assert not parsed.errors, parsed.errors
    return compile_rule(parsed.sources[0], attack=load_attack_table())


def test_fields_read_and_keywords():
    rule = compiled(
        "  sel:\n    Image|endswith: '/x'\n    ParentCommandLine|contains: y\n"
        "  kw: [z]\n  condition: sel and kw\n"
    )
    assert rule.fields == {"image", "parentcommandline"}
    assert rule.keywords
    assert rule.log_source.name == "process_creation"


def test_info_carries_attack_techniques_and_tactics_old_and_new_ids():
    rule = compiled(
        "  sel: {Image: /x}\n  condition: sel\n",
        tags="tags: [attack.stealth, attack.t1685, attack.t1562.001, attack.g0020]\n",
    )
    assert [(t.id, t.name, t.same_as) for t in rule.info.techniques] == [
        ("T1685", "Disable or Modify Tools", "T1562.001"),
        ("T1562.001", "Disable or Modify Tools", "T1685"),
    ]
    assert [(t.id, t.name) for t in rule.info.tactics] == [("TA0005", "Stealth")]
    assert rule.info.key == "9a1d2b7e-0000-4000-8000-00000000000a"


def test_image_names_pin_rules_to_programs():
    assert compiled(
        "  sel:\n    Image|endswith: ['/wget', '/curl']\n  condition: sel\n"
    ).image_names == {"wget", "curl"}
    assert compiled("  sel:\n    Image: '/usr/bin/Wget'\n  condition: sel\n").image_names == {
        "wget"
    }
    assert (
        compiled(
            "  a: {Image|endswith: /wget}\n  b: {CommandLine|contains: x}\n  condition: a or b\n"
        ).image_names
        is None
    )
    assert compiled("  sel:\n    Image|endswith: 'wget'\n  condition: sel\n").image_names is None
    assert compiled("  a: {Image|endswith: /wget}\n  condition: not a\n").image_names is None


def test_auditd_record_types():
    rule = compiled(
        "  a: {type: EXECVE, a0: chmod}\n  b: {type: path, name: /etc/x}\n  condition: 1 of them\n",
        logsource="service: auditd",
    )
    assert rule.record_types == {"execve", "path"}
    rule = compiled("  a: {key: susp}\n  condition: a\n", logsource="service: auditd")
    assert rule.record_types is None


def test_unknown_field_is_unsupported_naming_it():
    with pytest.raises(UnsupportedRule, match="field 'TargetFilename' is not mapped"):
        compiled("  sel: {TargetFilename: /x}\n  condition: sel\n")
    with pytest.raises(UnsupportedRule, match="field 'CommandLine' is not mapped"):
        compiled("  sel: {CommandLine: x}\n  condition: sel\n", logsource="service: auditd")


def test_condition_naming_missing_selection_is_a_rule_error():
    with pytest.raises(RuleError) as raised:
        compiled("  sel: {Image: /x}\n  condition: sel and filter\n")
    assert raised.value.location == "r.yml:detection.condition"


def test_timestamp_modifiers_are_unsupported():
    with pytest.raises(UnsupportedRule, match="timestamp"):
        compiled("  sel:\n    ProcessId|hour: 3\n  condition: sel\n")
