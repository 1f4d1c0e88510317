"""Settings of the provenance graph builder and tracing."""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.model.setting import setting


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphSettings:
    max_nodes: int = setting(
        300_000,
        "Nodes held in memory; past this the least recently active tenth is evicted "
        "(already stored, so nothing is lost; counted as nodes_evicted).",
    )
    max_open_edges: int = setting(
        500_000,
        "Open edges whose reduction state is kept in memory (evictions counted).",
    )
    index_events: bool = setting(
        True, "Keep an index from event id to edge, so `trace EVENT_ID` works."
    )
    batch_events: int = setting(20_000, "Events per store transaction.")
