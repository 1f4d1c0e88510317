"""Retention: what the manager deletes, and when.

By age, on data time: events by their timestamp, alerts and incidents by their last signal,
each host's graph by its edges' last events (with the event index and then the nodes no edge
refers to any more). By size: past ``findings_max_bytes`` the findings store's oldest
events go, and past ``graph_max_bytes`` a host's oldest edges, in proportion to the excess.

Kept whatever their age: incidents still open (``new``, ``acknowledged``) or with a response
action not finished (proposed, approved, queued, delivered); the alerts any stored incident
names; and, in each host's graph, the nodes its stored incidents name and the edges between
two of them (the attack graph an analyst opens stays whole; tracing beyond it reaches only
what is younger than the cutoff). An incident's events are not kept: its story (steps, nodes,
edges) is in the incident itself.

A pass runs every ``interval_seconds``, and early once ``after_events`` events were stored
since the last one. It deletes one batch per transaction: an upload waits for one batch at
most (a host's graph batch holds only that host). Graphs are pruned by the process that
analyses the host (the manager, or in cluster mode the ``provarmor worker`` of its
partition), between its batches, and its graph builder forgets what was deleted, so no later
edge refers to a deleted node; a host not analysed since that process started keeps its
graph until it sends again. Every pass is counted on ``/metrics`` and its report kept
in the findings store (``provarmor server retention``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

from provarmor.graph.store import PruneCursor
from provarmor.manager.ingest import HostAnalysis, Ingestor
from provarmor.manager.metrics import ManagerMetrics
from provarmor.manager.settings import RetentionSettings
from provarmor.manager.store import FindingsCutoffs, FindingsPrune, FindingsStore
from provarmor.model.errors import ProvArmorError

log = logging.getLogger(__name__)

DAY_NS = 86_400 * 10**9
CHECK_SECONDS = 5.0
"""How often the background thread looks whether a pass is due."""


def before(now_ns: int, days: float) -> int:
    """The cutoff ``days`` before ``now_ns`` (0: the bound is off)."""
    return max(now_ns - int(days * DAY_NS), 1) if days else 0


@dataclasses.dataclass(slots=True, kw_only=True)
class GraphTotals:
    hosts: int = 0
    edges: int = 0
    events: int = 0
    nodes: int = 0
    gaps: int = 0
    reclaimed_bytes: int = 0
    longest_hold_s: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetentionReport:
    started_ns: int
    duration_s: float
    findings: FindingsPrune
    graph: GraphTotals

    def deleted(self) -> dict[str, int]:
        """Rows deleted per kind (the metric's labels)."""
        f, g = self.findings, self.graph
        return {
            "events": f.events,
            "events_for_size": f.events_for_size,
            "alerts": f.alerts,
            "incidents": f.incidents,
            "graph_edges": g.edges,
            "graph_events": g.events,
            "graph_nodes": g.nodes,
            "graph_gaps": g.gaps,
        }

    def to_json(self) -> str:
        findings = dataclasses.asdict(self.findings)
        del findings["kept_nodes"]
        return json.dumps(
            {
                "started_ns": self.started_ns,
                "duration_s": round(self.duration_s, 3),
                "deleted": self.deleted(),
                "findings": findings,
                "graph": dataclasses.asdict(self.graph),
            },
            sort_keys=True,
        )


class Retention:
    """Runs retention passes over a findings store and the graphs of an ingestor's hosts."""

    def __init__(
        self,
        settings: RetentionSettings,
        store: FindingsStore,
        ingestor: Ingestor,
        *,
        metrics: ManagerMetrics | None = None,
        findings: bool = True,
    ) -> None:
        """``findings``: also prune the findings store (the manager does; a bus worker
        prunes only the graphs of the hosts it analyses, and keeps no report)."""
        self.settings = settings
        self._findings = findings
        self._store = store
        self._ingestor = ingestor
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        """One pass at a time."""

    def cutoffs(self, now_ns: int) -> FindingsCutoffs:
        s = self.settings
        if not self._findings:  # every bound off: the pass only reads what incidents keep
            return FindingsCutoffs(rows=s.batch_rows)
        return FindingsCutoffs(
            events_before=before(now_ns, s.events_days),
            alerts_before=before(now_ns, s.alerts_days),
            incidents_before=before(now_ns, s.incidents_days),
            max_bytes=s.findings_max_bytes,
            rows=s.batch_rows,
        )

    def run_once(self, now_ns: int) -> RetentionReport:
        """One pass with ``now_ns`` as the present (data time): findings, then graphs."""
        with self._lock:
            started = time.perf_counter()
            try:
                findings = self._store.prune(self.cutoffs(now_ns))
                graph = self._prune_graphs(now_ns, findings.kept_nodes)
            except ProvArmorError:
                if self._metrics is not None:
                    self._metrics.retention_runs.labels(result="failed").inc()
                raise
            report = RetentionReport(
                started_ns=time.time_ns(),
                duration_s=time.perf_counter() - started,
                findings=findings,
                graph=graph,
            )
            if self._findings:
                self._store.record_retention(report.to_json())
            self._count(report)
            return report

    def _prune_graphs(self, now_ns: int, kept: dict[str, frozenset[str]]) -> GraphTotals:
        totals = GraphTotals()
        age = before(now_ns, self.settings.graph_days)
        if not age and not self.settings.graph_max_bytes:
            return totals
        for host in self._ingestor.loaded_hosts():
            if self._stop.is_set():  # the manager is closing: the rest waits for a restart
                break
            self._prune_graph(host, age, kept.get(host.host_id, frozenset()), totals)
        return totals

    def _prune_graph(
        self, host: HostAnalysis, age: int, keep: frozenset[str], totals: GraphTotals
    ) -> None:
        rows = self.settings.batch_rows
        totals.hosts += 1

        def held(started: float) -> None:
            totals.longest_hold_s = max(totals.longest_hold_s, time.perf_counter() - started)

        with host.lock:
            started = time.perf_counter()
            self._ingestor.settle(host)  # pending graph writes go in first
            cutoff = max(age, host.store.size_cutoff(self.settings.graph_max_bytes))
            held(started)
        if not cutoff:
            return
        cursor = PruneCursor()
        while True:
            with host.lock:
                started = time.perf_counter()
                self._ingestor.settle(host)  # writes of batches since the last step
                step = host.store.prune(cutoff, keep=keep, rows=rows, cursor=cursor)
                host.analysis.forget(step.nodes, edges_before=cutoff)
                held(started)
            totals.edges += step.edges
            totals.events += step.events
            totals.nodes += len(step.nodes)
            totals.gaps += step.gaps
            if step.done or self._stop.is_set():
                break
        if totals.edges or totals.events or totals.nodes:
            host.store.vacuum()  # without the host's lock: its uploads go on
        while True:
            with host.lock:
                started = time.perf_counter()
                freed = host.store.reclaim(pages=FindingsCutoffs().reclaim_pages)
                held(started)
            totals.reclaimed_bytes += freed
            if not freed or self._stop.is_set():
                break
        with host.lock:
            host.store.settle(self.settings.graph_max_bytes)

    def _count(self, report: RetentionReport) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        for kind, rows in report.deleted().items():
            metrics.retention_deleted.labels(kind=kind).inc(rows)
        metrics.retention_reclaimed.inc(
            report.findings.reclaimed_bytes + report.graph.reclaimed_bytes
        )
        metrics.retention_runs.labels(result="ok").inc()
        metrics.retention_last_run.set(report.started_ns / 1e9)
        metrics.retention_duration.set(report.duration_s)
        metrics.retention_hold.set(max(report.findings.longest_hold_s, report.graph.longest_hold_s))
        metrics.findings_bytes.set(report.findings.bytes_after)

    # the background thread

    def start(self) -> None:
        if self._thread is None and self.settings.enabled:
            self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        last_run = time.monotonic()
        last_events = self._ingestor.events_stored
        while not self._stop.wait(min(CHECK_SECONDS, self.settings.interval_seconds)):
            events = self._ingestor.events_stored
            due = time.monotonic() - last_run >= self.settings.interval_seconds
            early = 0 < self.settings.after_events <= events - last_events
            if not (due or early):
                continue
            last_run, last_events = time.monotonic(), events
            try:
                report = self.run_once(time.time_ns())
            except ProvArmorError as exc:
                log.error(
                    "retention pass failed (it runs again in %d s): %s",
                    self.settings.interval_seconds,
                    exc,
                )
                continue
            log.info("retention: %s", report.to_json())
