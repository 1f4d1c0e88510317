"""Ingest a recorded file into a graph store: importer -> graph builder -> store, in batches.

The same file (by content digest) is ingested once per store; a second ingest is reported
and skipped, so replays are idempotent.
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provarmor.graph.builder import BuilderCounters, BuilderLimits, GraphBuilder, GraphDelta
from provarmor.graph.settings import GraphSettings
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.registry import IMPORTERS

BATCH_EVENTS = 20_000


class IngestStore(Protocol):
    def apply(self, delta: GraphDelta) -> None: ...

    def next_edge_id(self) -> int: ...

    def ingested(self, digest: str) -> tuple[str, int] | None: ...

    def record_ingest(  # noqa: PLR0913
        self, *, digest: str, source: str, format: str, events: int, rejected: int, finished_at: int
    ) -> None: ...


@dataclass(slots=True)
class IngestResult:
    report: IngestReport
    counters: BuilderCounters
    seconds: float
    skipped_as_duplicate: str = ""
    """Set (to the earlier source) when this content was already in the store."""
    formats: list[str] = field(default_factory=list)


def file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def build_graph(  # noqa: PLR0913
    events: Iterable[Event],
    store: IngestStore,
    *,
    limits: BuilderLimits | None = None,
    index_events: bool = True,
    batch: int = BATCH_EVENTS,
    progress: Callable[[int], None] | None = None,
) -> BuilderCounters:
    """Feed events through a builder into ``store``; returns the builder's counters."""
    builder = GraphBuilder(
        limits=limits, next_edge_id=store.next_edge_id(), index_events=index_events
    )
    add = builder.add
    pending = 0
    for event in events:
        add(event)
        pending += 1
        if pending >= batch:
            store.apply(builder.drain())
            builder.evict()
            # The graph state is millions of long-lived, acyclic objects: move them out of the
            # cyclic collector's reach so its collections only scan the young ones.
            gc.freeze()
            if progress is not None:
                progress(pending)
            pending = 0
    store.apply(builder.drain(full=True))
    if progress is not None and pending:
        progress(pending)
    return builder.counters


def ingest_file(  # noqa: PLR0913
    path: Path,
    *,
    format: str,
    store: IngestStore,
    host: HostContext | None = None,
    settings: GraphSettings | None = None,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
) -> IngestResult:
    """Ingest one file. Unknown formats raise :class:`ConfigError`; bad records are counted
    in the result's report, never raised."""
    importer = IMPORTERS.get(format)
    if importer is None:
        raise ConfigError(f"unknown format {format!r}; known: {', '.join(sorted(IMPORTERS))}")
    report = IngestReport(source=str(path))
    digest = file_digest(path)
    earlier = store.ingested(digest)
    if earlier is not None and not force:
        return IngestResult(
            report=report, counters=BuilderCounters(), seconds=0.0, skipped_as_duplicate=earlier[0]
        )
    started = time.perf_counter()
    graph = settings or GraphSettings()
    counters = build_graph(
        importer(path, report=report, host=host or HostContext()),
        store,
        limits=BuilderLimits(max_nodes=graph.max_nodes, max_open_edges=graph.max_open_edges),
        index_events=graph.index_events,
        batch=graph.batch_events,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    store.record_ingest(
        digest=digest,
        source=str(path),
        format=format,
        events=report.events,
        rejected=report.rejected,
        finished_at=time.time_ns(),
    )
    return IngestResult(report=report, counters=counters, seconds=seconds, formats=[format])
