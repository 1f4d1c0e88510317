"""The packaged ATT&CK table: names, tactics, both numberings, tags."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from provarmor.model.attack import AttackRef, AttackTable, load_attack_table
from provarmor.model.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
SHARED_ATTACK = ROOT.parent / "shared" / "data" / "attack"


def test_technique_and_tactic_lookups():
    table = load_attack_table()
    assert table.attack_version == "18.1"
    unix_shell = table.technique("t1059.004")
    assert unix_shell is not None
    assert (unix_shell.name, unix_shell.tactics) == ("Unix Shell", ("TA0002",))
    assert table.tactic("command_and_control") == table.tactic("TA0011")
    assert table.tactic_ref("TA0004") == AttackRef(id="TA0004", name="Privilege Escalation")
    assert table.technique("T9999") is None
    assert table.tactic_ref("nope") is None


def test_v19_ids_and_old_ids_resolve_to_each_other():
    table = load_attack_table()
    name = "Disable or Modify Linux Audit System"
    assert table.technique_ref("T1685.004") == AttackRef(
        id="T1685.004", name=name, same_as="T1562.012"
    )
    assert table.technique_ref("T1562.012") == AttackRef(
        id="T1562.012", name=name, same_as="T1685.004"
    )
    firewall = table.technique("T1686")
    assert firewall is not None
    assert firewall.tactics == ("TA0005",)


def test_tags_resolve_to_techniques_and_tactics():
    tags = load_attack_table().resolve_tags(
        ["attack.execution", "attack.t1059.004", "attack.s0508", "attack.t0000", "cve.2021-4034"]
    )
    assert [(t.id, t.name) for t in tags.techniques] == [("T1059.004", "Unix Shell")]
    assert [(t.id, t.name) for t in tags.tactics] == [("TA0002", "Execution")]
    assert tags.unknown == ("attack.t0000",)


def test_tactics_come_from_techniques_when_no_tactic_tag():
    tags = load_attack_table().resolve_tags(["attack.t1548"])
    assert [t.name for t in tags.tactics] == ["Privilege Escalation", "Defense Evasion"]


def test_v19_tactics_split_from_defense_evasion():
    tags = load_attack_table().resolve_tags(["attack.stealth", "attack.defense-impairment"])
    assert [(t.id, t.name) for t in tags.tactics] == [
        ("TA0005", "Stealth"),
        ("TA0005", "Defense Impairment"),
    ]


def test_damaged_table_is_a_config_error():
    with pytest.raises(ConfigError, match="not JSON"):
        AttackTable.from_json(b"{")
    with pytest.raises(ConfigError, match="malformed"):
        AttackTable.from_json(b'{"format_version": 1}')
    with pytest.raises(ConfigError, match="format 9"):
        AttackTable.from_json(
            b'{"format_version":9,"attack_version":"x","renumbering":"","tactics":[],'
            b'"techniques":[]}'
        )


@pytest.mark.shared
def test_packaged_table_is_what_the_script_builds():
    if not SHARED_ATTACK.is_dir():
        pytest.skip(f"ATT&CK data not found at {SHARED_ATTACK}")
    spec = importlib.util.spec_from_file_location(
        "build_attack_table", ROOT / "scripts" / "build_attack_table.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    attack = json.loads((SHARED_ATTACK / "enterprise-attack-v18.1.json").read_text())
    with (SHARED_ATTACK / "v19-renumbering.csv").open(newline="") as handle:
        renumbering = list(csv.DictReader(handle))
    built = script.build_table(attack, renumbering)
    packaged = json.loads((ROOT / "src" / "provarmor" / "data" / "attack.json").read_text())
    assert built == packaged
    assert len(packaged["techniques"]) == 835 + 10


def test_every_tactic_id_has_one_current_name():
    table = load_attack_table()
    assert table.current_tactic_ref("TA0005") == AttackRef(id="TA0005", name="Stealth")
    assert table.current_tactic_ref("ta0011") == AttackRef(id="TA0011", name="Command and Control")
    assert table.current_tactic_ref("TA9999") is None
