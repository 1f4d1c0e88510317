from pathlib import Path

from provarmor.lab.catalogue import render
from provarmor.lab.registry import SCENARIOS, WORKLOADS

DOC = Path(__file__).resolve().parents[3] / "docs" / "lab.md"


def test_docs_lab_md_holds_the_current_catalogue():
    assert render() in DOC.read_text(), "regenerate: python -m provarmor.lab.catalogue"


def test_the_catalogue_names_every_scenario_step_technique_and_workload():
    text = render()
    for scenario in SCENARIOS:
        assert f"`{scenario.name}`" in text and scenario.root_cause in text
        for step in scenario.steps:
            assert f"`{step.name}`" in text
        for technique in scenario.techniques:
            assert technique.id in text
    for workload in WORKLOADS:
        assert f"`{workload.name}`" in text
