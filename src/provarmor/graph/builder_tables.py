"""The graph builder's tables as typed records, for checkpoints that carry only what changed
(:meth:`~provarmor.graph.builder.GraphBuilder.take_tables`).

A chunk holds one entry per node id and per open-edge key whose state changed: the entry
is that key's whole state afterwards (absent fields: not in that table any more) and
whether it was (re)inserted meanwhile, which puts it last in the tables' order (the
builder's eviction breaks ties of equal sequence numbers by that order)."""

from __future__ import annotations

import msgspec

from provarmor.graph.records import Edge, Node


class NodeEntry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    id: str
    moved: bool
    """(Re)inserted since the previous chunk: goes last in the order."""
    node: Node | None
    """The node held in memory (None: not held)."""
    seq: int | None
    """Its last activity (the builder's event sequence number)."""
    last_in: int | None
    """When information last entered it (sequence number)."""
    last_out: int | None
    """When information last left it."""
    touched: bool
    """Its times changed since the last full drain."""


class EdgeEntry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    key: tuple[str, str, str]
    """``(src, dst, action)``."""
    moved: bool
    edge: Edge | None
    """The open edge of that key (None: none open)."""
    seq: int | None
    """The sequence number of its last event."""


class TablesChunk(msgspec.Struct, frozen=True):
    nodes: list[NodeEntry]
    edges: list[EdgeEntry]
