"""What one retention pass asks of the findings store and what it did
(:meth:`provarmor.manager.store.FindingsStore.prune`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingsCutoffs:
    """Data times (ns) before which each kind goes (0: kept however old), and the size
    bound."""

    events_before: int = 0
    alerts_before: int = 0
    incidents_before: int = 0
    max_bytes: int = 0
    """0: no size bound."""
    rows: int = 5_000
    """Rows per transaction."""
    reclaim_pages: int = 4_096
    """Pages given back to the file system per hold of the store (SQLite)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingsPrune:
    incidents: int = 0
    alerts: int = 0
    events: int = 0
    """Events older than the age bound."""
    events_for_size: int = 0
    """Events deleted (oldest stored first) to bring the store under its size bound."""
    bytes_before: int = 0
    bytes_after: int = 0
    reclaimed_bytes: int = 0
    longest_hold_s: float = 0.0
    """The longest one batch held the store (and so any upload waiting for it)."""
    kept_nodes: dict[str, frozenset[str]] = field(default_factory=dict)
    """Per host, the graph nodes the remaining incidents name: graph retention keeps them."""
