import dataclasses
from dataclasses import dataclass, field

import pytest

from provarmor.graph.settings import GraphSettings
from provarmor.model.errors import ConfigError
from provarmor.pipeline.config import AnalysisConfig, load_config, schema_markdown


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphOnly:
    graph: GraphSettings = field(default_factory=GraphSettings)


SECTIONS = GraphOnly


def test_defaults_file_environment_and_overrides_in_that_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("graph:\n  max_nodes: 10\n  batch_events: 7\n")
    config = load_config(
        SECTIONS,
        path=path,
        environ={"PROVARMOR_GRAPH__MAX_NODES": "20", "PROVARMOR_GRAPH__INDEX_EVENTS": "no"},
        overrides=["graph.max_nodes=0x40"],
    )
    assert isinstance(config, GraphOnly)
    graph = config.graph
    assert (graph.max_nodes, graph.batch_events, graph.index_events) == (64, 7, False)
    assert graph.max_open_edges == GraphSettings().max_open_edges


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope:\n  a: 1\n", "unknown section 'nope'"),
        ("graph:\n  max_nodez: 1\n", "unknown key 'max_nodez'"),
        ("graph:\n  max_nodes: many\n", "expected a number"),
        ("graph:\n  index_events: perhaps\n", "expected true or false"),
        ("graph: [1, 2]\n", "expected a mapping of keys"),
        ("- a\n", "expected a mapping of sections"),
        ("graph: {\n", "cannot read configuration"),
    ],
)
def test_bad_configuration_names_where(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(SECTIONS, path=path, environ={})
    assert str(path) in str(info.value)


def test_bad_override_is_reported():
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        load_config(SECTIONS, environ={}, overrides=["max_nodes=3"])


def test_schema_lists_every_key_with_its_description():
    text = schema_markdown(SECTIONS)
    assert "| `max_nodes` | int | `300000` | stable |" in text
    assert "nodes_evicted" in text


def test_a_configuration_is_a_frozen_record_of_typed_sections(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("incident:\n  rule: score\n  min_score: 4.5\nanomaly:\n  batch_size: 8\n")
    config = load_config(AnalysisConfig, path=path, environ={})
    assert (config.incident.rule, config.incident.min_score) == ("score", 4.5)
    assert config.anomaly.batch_size == 8
    assert config.graph == GraphSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.graph = GraphSettings(max_nodes=1)  # type: ignore[misc]


def test_an_inconsistent_incident_rule_names_its_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("incident:\n  min_score: 4.5\n")
    with pytest.raises(ConfigError, match=r"only read with rule `score`") as info:
        load_config(AnalysisConfig, path=path, environ={})
    assert f"{path}: incident.min_score" in str(info.value)
    with pytest.raises(ConfigError, match="unknown value 'sometimes'"):
        load_config(AnalysisConfig, environ={}, overrides=["incident.rule=sometimes"])


def test_tuple_settings_take_a_yaml_list_or_one_item(tmp_path):
    """A list in YAML becomes a tuple of the declared item type; one item given in the
    environment or with --set becomes a one-item tuple (never a string of characters)."""
    from pathlib import Path

    from provarmor.manager.settings import ManagerSettings
    from provarmor.response.settings import ResponseSettings

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Sections:
        manager: ManagerSettings = field(default_factory=ManagerSettings)
        response: ResponseSettings = field(default_factory=ResponseSettings)

    path = tmp_path / "c.yaml"
    path.write_text("manager:\n  rules: [a.yml, b]\nresponse:\n  allow_networks: [10.0.0.0/8]\n")
    config = load_config(
        Sections, path=path, environ={"PROVARMOR_RESPONSE__MANAGER_ADDRESSES": "192.0.2.1"}
    )
    assert config.manager.rules == (Path("a.yml"), Path("b"))
    assert config.response.allow_networks == ("10.0.0.0/8",)
    assert config.response.manager_addresses == ("192.0.2.1",)
    with pytest.raises(ConfigError, match="not an IP address or network"):
        load_config(Sections, environ={}, overrides=["response.bus_addresses=bus.local"])
