import pytest

from provarmor.lab.techniques import ALL, TACTIC_IDS, Tactic


def test_every_tactic_has_an_id_and_techniques_are_unique():
    assert set(TACTIC_IDS) == set(Tactic)
    ids = [technique.id for technique in ALL]
    assert len(ids) == len(set(ids)) >= 50


def test_ids_names_and_tactics_agree_with_the_packaged_attack_table():
    attack = pytest.importorskip("provarmor.model.attack")
    table = attack.load_attack_table()
    for technique in ALL:
        entry = table.technique(technique.id)
        assert entry is not None, technique.id
        assert entry.name == technique.name.split(": ")[-1]
        assert TACTIC_IDS[technique.tactic] in entry.tactics, technique.id
