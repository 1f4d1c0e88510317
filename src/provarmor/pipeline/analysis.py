"""The analysis pipeline: events -> provenance graph -> detectors -> campaigns -> incidents.

Events are taken in micro-batches. For each batch the graph builder sees every event and the
batch's graph delta is written to the store; then every detector sees each event in order,
and only then are the batch's signals handed to the incident engine, so a campaign search
always finds the edges of the events that raised its signals. A failed graph write leaves the
detectors and the incident engine as they were before the batch (they have not seen it) and
the store rolled back; the builder, which had counted the batch as written, is replaced by a
fresh one that continues the edge ids, so the batch can be fed again.

A batch ends after ``BATCH_EVENTS`` events or ``BATCH_SECONDS`` of event time, whichever comes
first, which bounds the delay from an event to the incident update it causes.

Each incident update carries its latency: the event time from the earliest signal of the batch
that it took in to the batch's last event, plus the wall-clock seconds the batch took to
process.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from provarmor.detection.engine import Detector, Signal
from provarmor.graph.builder import BuilderCounters, BuilderLimits, GraphBuilder
from provarmor.graph.read_cache import ReadCachedStore
from provarmor.graph.store import GraphStore
from provarmor.investigation.incidents import IncidentEngine
from provarmor.model.event import Event
from provarmor.model.incident import Incident
from provarmor.model.time_units import ns_to_seconds, seconds_to_ns

BATCH_EVENTS = 2_000
BATCH_SECONDS = 0.2
FREEZE_EVERY_EVENTS = 20_000


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    """An incident created or changed by one batch."""

    incident: Incident
    latency_s: float
    """Seconds from the earliest signal this update took in (its event time) to the update:
    the rest of the batch's event time plus the wall-clock processing time."""
    trigger_ts: int
    """Event time (ns) of the last event of the batch that caused the update."""


@dataclass(slots=True)
class AnalysisResult:
    alerts: list[Signal] = field(default_factory=list)
    updates: list[IncidentUpdate] = field(default_factory=list)
    events: int = 0
    batches: int = 0

    def incidents(self) -> list[Incident]:
        """The latest version of every incident."""
        latest: dict[str, Incident] = {}
        for update in self.updates:
            latest[update.incident.id] = update.incident
        return list(latest.values())


Finding = Signal | IncidentUpdate


class Analysis:
    """Runs the whole analysis over a stream. Feed with :meth:`run` (finite streams) or
    :meth:`feed` + :meth:`finish` (a live consumer that hands over batches)."""

    def __init__(  # noqa: PLR0913
        self,
        store: GraphStore,
        *,
        detectors: Sequence[Detector],
        engine: IncidentEngine,
        limits: BuilderLimits | None = None,
        index_events: bool = True,
        next_edge_id: int = 1,
    ) -> None:
        self.store = store
        self.detectors = list(detectors)
        self.engine = engine
        self._index_events = index_events
        self.builder = GraphBuilder(
            limits=limits, index_events=index_events, next_edge_id=next_edge_id
        )
        self._since_freeze = 0

    @property
    def graph_counters(self) -> BuilderCounters:
        return self.builder.counters

    def forget(self, node_ids: Iterable[str], *, edges_before: int) -> None:
        """Retention deleted ``node_ids`` and the edges older than ``edges_before`` from the
        store (around the analysis): the builder drops them and the read cache starts over,
        so nothing deleted is read or referred to again. Call between batches."""
        self.builder.forget(node_ids, edges_before=edges_before)
        if isinstance(self.store, ReadCachedStore):
            self.store.invalidate()

    def feed(
        self,
        events: Sequence[Event],
        *,
        meta: dict[str, str] | None = None,
        defer_stories: bool = False,
    ) -> list[Finding]:
        """Process one batch; returns its alerts and incident updates. ``meta`` (a consumer's
        position) is written with the batch's graph delta, in its transaction. With
        ``defer_stories`` the incidents' updates wait for the engine's
        :meth:`~provarmor.investigation.incidents.IncidentEngine.take_pending` (a consumer of
        many batches at once builds each story once)."""
        started = time.perf_counter()
        add = self.builder.add
        events = [add(event) for event in events]  # host log events joined to processes
        self._write_graph(full=False, meta=meta)
        detectors = self.detectors
        signals: list[Signal] = []
        for event in events:
            for detector in detectors:
                found = detector.on_event(event)
                if found:
                    signals.extend(found)
        trigger = events[-1].timestamp if events else 0
        return self._close_batch(
            signals, started=started, trigger=trigger, events=len(events), defer=defer_stories
        )

    def finish(self) -> list[Finding]:
        """End of stream: flush the builder and the detectors' open state."""
        started = time.perf_counter()
        self._write_graph(full=True, meta=None)
        signals: list[Signal] = []
        for detector in self.detectors:
            signals.extend(detector.flush())
        return self._close_batch(signals, started=started, trigger=0, events=0)

    def _write_graph(self, *, full: bool, meta: dict[str, str] | None) -> None:
        try:
            self.store.apply(self.builder.drain(full=full), meta=meta)
        except Exception:
            # The store rolled the delta back, but the builder counts it as written: start
            # a fresh builder (later events re-create the nodes they touch), never reusing
            # the edge ids the lost delta took.
            lost = self.builder
            self.builder = GraphBuilder(
                limits=lost.limits, index_events=self._index_events, next_edge_id=lost.next_edge_id
            )
            self.builder.counters = lost.counters
            self.builder.join = lost.join
            raise
        self.builder.evict()

    def _close_batch(
        self,
        signals: list[Signal],
        *,
        started: float,
        trigger: int,
        events: int,
        defer: bool = False,
    ) -> list[Finding]:
        self._since_freeze += events
        if self._since_freeze >= FREEZE_EVERY_EVENTS:
            gc.freeze()  # long-lived graph state: out of the cyclic collector's scans
            self._since_freeze = 0
        findings: list[Finding] = list(signals)
        if signals:
            if not trigger:
                trigger = max(signal.last_timestamp for signal in signals)
            for incident in self.engine.add_signals(signals, defer=defer):
                wall = time.perf_counter() - started
                members = set(incident.alert_ids)
                taken = [s.last_timestamp for s in signals if s.id in members] or [trigger]
                waited = ns_to_seconds(max(trigger - min(taken), 0))
                findings.append(
                    IncidentUpdate(incident, latency_s=waited + wall, trigger_ts=trigger)
                )
        return findings

    def run(self, events: Iterable[Event]) -> Iterator[Finding]:
        """Process a finite stream in micro-batches, then :meth:`finish`."""
        for batch in batches(events):
            yield from self.feed(batch)
        yield from self.finish()

    def collect(self, events: Iterable[Event]) -> AnalysisResult:
        """:meth:`run` to the end, keeping every alert and incident update."""
        result = AnalysisResult()
        for finding in self.run(events):
            if isinstance(finding, IncidentUpdate):
                result.updates.append(finding)
            else:
                result.alerts.append(finding)
        result.events = self.builder.counters.events
        return result


def batches(
    events: Iterable[Event], *, size: int = BATCH_EVENTS, seconds: float = BATCH_SECONDS
) -> Iterator[list[Event]]:
    """Cut a stream into batches of at most ``size`` events spanning at most ``seconds`` of
    event time. Live, event time is wall time, so a batch never waits longer than that; a
    replay is cut exactly where the live pipeline would have cut it (or earlier)."""
    span = seconds_to_ns(seconds)
    batch: list[Event] = []
    end = 0
    for event in events:
        if batch and (len(batch) >= size or event.timestamp >= end):
            yield batch
            batch = []
        if not batch:
            end = event.timestamp + span
        batch.append(event)
    if batch:
        yield batch
