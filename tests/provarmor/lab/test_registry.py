import pytest

from provarmor.lab.registry import SCENARIOS, WORKLOADS, find_scenario, find_workloads
from provarmor.model.errors import ConfigError


def test_at_least_eight_scenarios_each_with_five_techniques_over_four_tactics():
    assert len(SCENARIOS) >= 8
    for scenario in SCENARIOS:
        assert len(scenario.techniques) >= 5, scenario.name
        assert len(scenario.tactics) >= 4, scenario.name
        assert scenario.description and scenario.root_cause and scenario.modelled_on


def test_at_least_ten_workloads_and_names_are_unique():
    assert len(WORKLOADS) >= 10
    assert len({w.name for w in WORKLOADS}) == len(WORKLOADS)
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)
    assert sum(bool(w.looks_like) for w in WORKLOADS) >= 5


def test_lookups_by_name():
    assert find_scenario("nodlink-ubuntu").name == "nodlink-ubuntu"
    assert [w.name for w in find_workloads("backup, ssh-admin")] == ["backup", "ssh-admin"]
    assert find_workloads("") == WORKLOADS
    with pytest.raises(ConfigError, match="unknown scenario"):
        find_scenario("nope")
    with pytest.raises(ConfigError, match="unknown workload"):
        find_workloads("backup,nope")
