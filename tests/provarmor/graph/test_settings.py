import dataclasses

from provarmor.graph.builder import BuilderLimits
from provarmor.graph.settings import GraphSettings


def test_defaults_agree_with_the_builder():
    settings = GraphSettings()
    limits = BuilderLimits()
    assert (settings.max_nodes, settings.max_open_edges) == (
        limits.max_nodes,
        limits.max_open_edges,
    )
    assert all(field.metadata["description"] for field in dataclasses.fields(GraphSettings))
