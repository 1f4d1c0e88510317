"""Ingest a recorded file into a graph store: importer -> graph builder -> store, in batches.

The same file (by content digest and format) is ingested once per store; a second ingest is
reported and skipped, so re-runs are idempotent. Only an import that produced events, or
rejected nothing, is recorded: a wrong ``--format`` leaves the file free to be ingested
with the right one.

An interrupted ingest (killed, disk full) resumes. Each batch commits together with the
ingest's progress (the batches written so far and the builder's settings and first edge
id). The re-run reads the file again and rebuilds the same builder state, writing only the
batches after the last committed one: importer and builder are deterministic, so the graph
ends exactly as an uninterrupted ingest leaves it, never with an edge twice.
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from provarmor.graph.builder import BuilderCounters, BuilderLimits, GraphBuilder, GraphDelta
from provarmor.graph.settings import GraphSettings
from provarmor.graph.store import PersistentGraphStore
from provarmor.model.errors import ConfigError, StorageError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.registry import IMPORTERS

BATCH_EVENTS = 20_000
PROGRESS_VERSION = 1
"""Version of the progress record kept in the store's ``meta`` during an ingest."""


class IngestProgress(msgspec.Struct, frozen=True, kw_only=True):
    """How far an ingest got, committed with each batch (JSON in the store's ``meta``)."""

    version: int = PROGRESS_VERSION
    source: str
    host: str
    first_edge_id: int
    next_edge_id: int
    """The store's next edge id after the committed batches: if another writer has moved it
    since, the rebuilt batches would collide with its edges."""
    batch_events: int
    max_nodes: int
    max_open_edges: int
    index_events: bool
    batches: int = 0
    """Batches committed so far."""


@dataclass(slots=True)
class IngestResult:
    report: IngestReport
    counters: BuilderCounters
    seconds: float
    skipped_as_duplicate: str = ""
    """Set (to the earlier source) when this content was already in the store."""
    formats: list[str] = field(default_factory=list)
    resumed_batches: int = 0
    """Batches an interrupted earlier run had committed (not written again)."""


def file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def ingest_key(digest: str, format: str) -> str:
    """What an ingest is recorded under: the content digest and the format it was read as."""
    return f"{digest}:{format}"


def progress_key(key: str) -> str:
    return f"ingest-progress:{key}"


def build_graph(  # noqa: PLR0913
    events: Iterable[Event],
    store: PersistentGraphStore,
    *,
    limits: BuilderLimits | None = None,
    index_events: bool = True,
    batch: int = BATCH_EVENTS,
    progress: Callable[[int], None] | None = None,
    first_edge_id: int | None = None,
    write: Callable[[GraphDelta], None] | None = None,
) -> BuilderCounters:
    """Feed events through a builder into ``store``; returns the builder's counters.

    ``write`` (default ``store.apply``) receives every batch, the last one a full drain;
    ``first_edge_id`` (default: the store's next) is where edge ids start.
    """
    builder = GraphBuilder(
        limits=limits,
        next_edge_id=store.next_edge_id() if first_edge_id is None else first_edge_id,
        index_events=index_events,
    )
    write = write or store.apply
    add = builder.add
    pending = 0
    for event in events:
        add(event)
        pending += 1
        if pending >= batch:
            write(builder.drain())
            builder.evict()
            # The graph state is millions of long-lived, acyclic objects: move them out of the
            # cyclic collector's reach so its collections only scan the young ones.
            gc.freeze()
            if progress is not None:
                progress(pending)
            pending = 0
    write(builder.drain(full=True))
    if progress is not None and pending:
        progress(pending)
    return builder.counters


def _start(  # noqa: PLR0913
    store: PersistentGraphStore,
    *,
    key: str,
    path: Path,
    host: HostContext,
    graph: GraphSettings,
    resume: bool,
) -> IngestProgress:
    """The progress of an interrupted run of this ingest (when ``resume``), or a fresh one."""
    next_edge_id = store.next_edge_id()
    fresh = IngestProgress(
        source=str(path),
        host=host.id,
        first_edge_id=next_edge_id,
        next_edge_id=next_edge_id,
        batch_events=graph.batch_events,
        max_nodes=graph.max_nodes,
        max_open_edges=graph.max_open_edges,
        index_events=graph.index_events,
    )
    saved = store.meta(progress_key(key)) if resume else None
    if not saved:
        return fresh
    try:
        earlier = msgspec.json.decode(saved, type=IngestProgress)
    except msgspec.DecodeError as exc:
        raise StorageError(f"unreadable ingest progress: {exc}", location=key) from None
    if earlier.version != PROGRESS_VERSION:
        raise StorageError(
            f"ingest progress of version {earlier.version}; this build reads {PROGRESS_VERSION}",
            location=key,
        )
    if earlier.host != host.id:
        raise ConfigError(
            f"an interrupted ingest of this file with --host {earlier.host} is pending: run it "
            f"again with that host to resume it (or --force to ingest it again in full)",
            location=str(path),
        )
    if earlier.next_edge_id != next_edge_id:
        raise ConfigError(
            "the graph store has changed since an interrupted ingest of this file (another "
            "ingest ran in between), so it cannot be resumed: use --force to ingest it again "
            "in full (what the interrupted run stored stays, so some edges would be doubled)",
            location=str(path),
        )
    return earlier


def ingest_file(  # noqa: PLR0913
    path: Path,
    *,
    format: str,
    store: PersistentGraphStore,
    host: HostContext | None = None,
    settings: GraphSettings | None = None,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
) -> IngestResult:
    """Ingest one file. Unknown formats raise :class:`ConfigError`; bad records are counted
    in the result's report, never raised. An interrupted ingest of the same content and
    format resumes (unless ``force``: then the file is ingested again in full)."""
    importer = IMPORTERS.get(format)
    if importer is None:
        raise ConfigError(f"unknown format {format!r}; known: {', '.join(sorted(IMPORTERS))}")
    host = host or HostContext()
    report = IngestReport(source=str(path))
    key = ingest_key(file_digest(path), format)
    earlier = store.ingested(key)
    if earlier is not None and not force:
        return IngestResult(
            report=report, counters=BuilderCounters(), seconds=0.0, skipped_as_duplicate=earlier[0]
        )
    started = time.perf_counter()
    graph = settings or GraphSettings()
    state = _start(store, key=key, path=path, host=host, graph=graph, resume=not force)
    resumed = state.batches
    done = 0

    def write(delta: GraphDelta) -> None:
        nonlocal done, state
        done += 1
        if done <= resumed:
            return  # committed by the interrupted run
        next_edge_id = max([state.next_edge_id, *(edge.id + 1 for edge in delta.new_edges)])
        state = msgspec.structs.replace(state, batches=done, next_edge_id=next_edge_id)
        store.apply(delta, meta={progress_key(key): msgspec.json.encode(state).decode()})

    counters = build_graph(
        importer(path, report=report, host=host),
        store,
        limits=BuilderLimits(max_nodes=state.max_nodes, max_open_edges=state.max_open_edges),
        index_events=state.index_events,
        batch=state.batch_events,
        progress=progress,
        first_edge_id=state.first_edge_id,
        write=write,
    )
    if report.events or not report.rejected:
        store.record_ingest(
            digest=key,
            source=str(path),
            format=format,
            events=report.events,
            rejected=report.rejected,
            finished_at=time.time_ns(),
        )
        store.apply(GraphDelta(), meta={progress_key(key): ""})  # done: nothing to resume
    return IngestResult(
        report=report,
        counters=counters,
        seconds=time.perf_counter() - started,
        formats=[format],
        resumed_batches=resumed,
    )
