"""Server-side ingest: an uploaded batch -> validated events -> the host's analysis ->
events, alerts and incident versions stored with the batch's sequence number.

Each host has one :class:`~provarmor.pipeline.analysis.Analysis` over its own graph store
(a SQLite file under the state directory, or a schema of the PostgreSQL database), made on
its first upload and fed under a per-host lock, so a host's batches are analysed one at a
time and in order. A batch whose sequence the agent already had acknowledged is answered as
a duplicate without touching the analysis: re-delivery after an outage adds nothing twice.

Analysts' active exceptions filter every host's alerts. :meth:`Ingestor.reload_exceptions`
(called after each confirmed, edited, disabled or deleted exception) makes a new
:class:`ExceptionSet`; each host's analysis takes it in before its next batch, without a
restart, and the alerts each exception suppressed are counted in the batch's commit.

A learning host (no operator's model) also has a :class:`~provarmor.pipeline.learning.
HostLearning` whose model archive and checkpoint live under ``state_dir/models/<host>``:
after each batch it archives new model versions and checkpoints when due; :meth:`Ingestor.
learning_status` answers from memory, or from the status file for a host not loaded since
a restart.

Analysis and storage of a batch are one unit. The batch's graph delta is written together
with the agent's batch sequence (``batch:<agent id>`` in the graph store's meta) before any
detector sees the batch; if that write fails, the graph is rolled back and the analysis is as
it was (:meth:`~provarmor.pipeline.analysis.Analysis.feed`), so the re-sent batch is analysed
afresh. If the findings (events, alerts, incidents) then fail to commit, the host keeps them
as its unstored batch and commits them before anything else, answering the re-sent batch
without analysing it twice; after a restart in between, the graph's sequence shows the batch
is already in the graph, and only its events are stored (its alerts are lost, logged).

Every committed alert and incident version also goes to the manager's outputs (files in a
format of the registries, from the settings), after its commit: a re-sent batch writes
nothing twice. An output that fails loses the findings only for itself (they are in the
store); they are logged and counted (:attr:`UploadResult.unwritten`).

Incident ids from a host's incident engine (``inc-c3``) are unique only within that engine;
the manager's id appends the host analysis's random tag (``inc-c3-5f0c9a1e``), so ids differ
across hosts and across restarts of the manager.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import msgspec

from provarmor.detection.anomaly.learning import LearningStatus, Phase
from provarmor.detection.context import ContextDetector
from provarmor.detection.suppress import SuppressingDetector, Suppression
from provarmor.graph.store import PersistentGraphStore
from provarmor.manager.detectors import DetectionKit, build_host_analysis
from provarmor.manager.exceptions import ExceptionState
from provarmor.manager.store import (
    AgentRecord,
    AlertRow,
    BatchCommit,
    EventRow,
    FindingsStore,
    IncidentRow,
)
from provarmor.model.alert import Alert
from provarmor.model.codec import encode_json, parse_json_event
from provarmor.model.errors import ParseError, ProvArmorError, StorageError
from provarmor.model.event import Event
from provarmor.model.incident import Incident
from provarmor.outputs.base import Output
from provarmor.pipeline.analysis import Analysis, Finding, IncidentUpdate
from provarmor.pipeline.learning import STATUS_FILE, HostLearning
from provarmor.storage.private import private_dir
from provarmor.storage.urls import open_graph_store

_encoder = msgspec.json.Encoder()
log = logging.getLogger(__name__)


class BatchTooLarge(ProvArmorError):
    """An upload over the byte or event limit (answered 413)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadResult:
    """What one agent upload came to (a file ingest's is
    :class:`provarmor.pipeline.ingest.UploadResult`)."""

    acked_sequence: int
    duplicate: bool
    events: int = 0
    alerts: int = 0
    incidents: int = 0
    unwritten: int = 0
    """Findings an output failed to write since the host's last result (stored all the
    same)."""


@dataclass(frozen=True, slots=True)
class ExceptionSet:
    """The active exceptions as suppressions; ``generation`` grows with each reload."""

    generation: int
    suppressions: tuple[Suppression, ...]


@dataclass(slots=True)
class HostAnalysis:
    host_id: str
    store: PersistentGraphStore
    analysis: Analysis
    tag: str
    learning: HostLearning | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    exceptions: int = 0
    """The generation of the exception set the analysis applies."""
    counted: Counter[str] = field(default_factory=Counter)
    """Suppressions per exception already committed with earlier batches."""
    unstored: BatchCommit | None = None
    """A batch in the graph and the analysis whose findings failed to commit."""
    unwritten: int = 0
    """Findings an output failed to write, not yet in an :class:`UploadResult`."""

    def take_unwritten(self) -> int:
        count, self.unwritten = self.unwritten, 0
        return count

    def filters(self) -> list[SuppressingDetector]:
        found: list[SuppressingDetector] = []
        for detector in self.analysis.detectors:
            inner = detector.detectors if isinstance(detector, ContextDetector) else [detector]
            found += [d for d in inner if isinstance(d, SuppressingDetector)]
        return found

    def take_exceptions(self, current: ExceptionSet) -> None:
        if self.exceptions != current.generation:
            for detector in self.filters():
                detector.replace_suppressions(current.suppressions)
            self.exceptions = current.generation

    def new_hits(self) -> dict[str, int]:
        """Alerts each exception suppressed since the last call."""
        total: Counter[str] = Counter()
        for detector in self.filters():
            total.update(detector.stats.suppressed)
        fresh = total - self.counted
        self.counted = total
        return dict(fresh)


def graph_position(agent_id: str) -> str:
    """The graph store's meta key for the last batch of ``agent_id`` written to the graph."""
    return f"batch:{agent_id}"


GraphOpener = Callable[[str], PersistentGraphStore]


def host_key(host_id: str) -> str:
    """A host's name in the state directory and database (host ids are free text)."""
    return "h" + hashlib.sha256(host_id.encode()).hexdigest()[:24]


def graph_opener(*, database_url: str, state_dir: Path) -> GraphOpener:
    """Where host graphs live: a schema per host in PostgreSQL when the findings store is
    PostgreSQL (``<findings schema>_h<hash of the host id>``), else a SQLite file per host
    under ``state_dir/graphs``."""

    def open_host(host_id: str) -> PersistentGraphStore:
        name = host_key(host_id)
        if database_url.startswith(("postgresql://", "postgres://")):
            from provarmor.storage.postgres_dialect import split_schema  # needs psycopg

            base, schema = split_schema(database_url)
            separator = "&" if "?" in base else "?"
            return open_graph_store(f"{base}{separator}schema={schema or 'provarmor'}_{name}")
        directory = state_dir / "graphs"
        private_dir(directory)
        return open_graph_store(directory / f"{name}.db")

    return open_host


_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
"""A NUL escape in JSON text (after an even run of backslashes, so not itself escaped)."""


def without_nul(line: bytes) -> bytes:
    """``line`` (JSON) with every NUL character in its strings written as U+FFFD: PostgreSQL
    cannot store NUL in text, and SQLite's text functions stop at one."""
    if b"\\u0000" not in line:
        return line
    return _NUL_ESCAPE.sub(rb"\1\\ufffd", line)


def parse_batch(body: bytes, *, host_id: str, max_events: int) -> list[Event]:
    """Decode NDJSON events (NUL characters become U+FFFD); the first bad line raises
    :class:`ParseError` naming it (``batch:LINE``). Every event must belong to ``host_id``."""
    events: list[Event] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(events) >= max_events:
            raise BatchTooLarge(f"more than {max_events} events in one batch")
        event = parse_json_event(without_nul(line), location=f"batch:{number}")
        if event.host.id != host_id:
            raise ParseError(
                f"event of host {event.host.id!r} uploaded by an agent of host {host_id!r}",
                location=f"batch:{number}",
            )
        events.append(event)
    return events


def event_row(event: Event, *, keep_json: bool) -> EventRow:
    remote = ""
    endpoint = event.destination or event.source
    if endpoint is not None:
        if endpoint.ip:
            remote = f"{endpoint.ip}:{endpoint.port}"
        else:
            remote = endpoint.address or endpoint.domain
    return EventRow(
        host=event.host.id,
        ts=event.timestamp,
        event_id=event.event.id,
        action=event.event.action.value,
        process=event.process.entity_id,
        executable=event.process.executable,
        command_line=event.process.command_line,
        file_path=event.file.path if event.file is not None else "",
        remote=remote,
        json=encode_json(event).decode() if keep_json else "",
    )


def alert_row(alert: Alert, *, host_id: str) -> AlertRow:
    return AlertRow(
        host=alert.host_id or host_id,
        id=alert.id,
        rule_id=alert.rule_id,
        title=alert.rule_title,
        level=alert.level,
        detector=alert.detector,
        first_ts=alert.first_timestamp,
        last_ts=alert.last_timestamp,
        score=alert.score,
        json=_encoder.encode(alert).decode(),
    )


def incident_row(incident: Incident, *, tag: str) -> IncidentRow:
    public = msgspec.structs.replace(
        incident,
        id=f"{incident.id}-{tag}",
        merged_ids=tuple(f"{merged}-{tag}" for merged in incident.merged_ids),
    )
    return IncidentRow(
        id=public.id,
        host=incident.host_id,
        engine_id=incident.id,
        severity=incident.severity,
        score=incident.score,
        status=incident.status.value,
        title=incident.title,
        first_ts=incident.first_ts,
        last_ts=incident.last_ts,
        updated_ts=incident.updated_ts,
        version=incident.version,
        json=_encoder.encode(public).decode(),
    )


def _result(batch: BatchCommit, *, stored: bool, host: HostAnalysis) -> UploadResult:
    return UploadResult(
        acked_sequence=batch.sequence,
        duplicate=not stored,
        events=len(batch.events),
        alerts=len(batch.alerts),
        incidents=len(batch.incidents),
        unwritten=host.take_unwritten(),
    )


def findings_of(batch: BatchCommit) -> tuple[list[Alert], list[Incident]]:
    """The alerts (with the host they were stored under) and incident versions (with their
    manager ids) of a batch, as the store keeps them."""
    alerts = [
        msgspec.structs.replace(msgspec.json.decode(row.json, type=Alert), host_id=row.host)
        for row in batch.alerts
    ]
    incidents = [msgspec.json.decode(row.json, type=Incident) for row in batch.incidents]
    return alerts, incidents


class Ingestor:
    """Uploads in, findings stored. Thread-safe; one analysis per host."""

    def __init__(  # noqa: PLR0913  (the store, the kit and the ingest limits)
        self,
        store: FindingsStore,
        *,
        kit: DetectionKit,
        open_graph: GraphOpener,
        max_batch_events: int,
        keep_event_json: bool = True,
        models_dir: Path | None = None,
        outputs: Sequence[Output] = (),
    ) -> None:
        """``models_dir``: where learning hosts keep their model archives (required when
        ``kit.learning`` is set). ``outputs``: where committed findings also go (closed by
        :meth:`close`)."""
        self.store = store
        self.kit = kit
        self._open_graph = open_graph
        self._max_events = max_batch_events
        self._keep_json = keep_event_json
        self._models_dir = models_dir
        self._outputs = tuple(outputs)
        self._output_lock = threading.Lock()
        self._hosts: dict[str, HostAnalysis] = {}
        self._lock = threading.Lock()
        self.events_stored = 0
        """Events of the batches stored since the start (retention runs early after many)."""
        self.exceptions = ExceptionSet(0, ())
        self.reload_exceptions()

    def reload_exceptions(self) -> ExceptionSet:
        """Read the active exceptions from the store; every host applies them from its next
        batch on."""
        with self._lock:
            active = self.store.exceptions(ExceptionState.ACTIVE)
            self.exceptions = ExceptionSet(
                self.exceptions.generation + 1,
                tuple(record.to_suppression() for record in active),
            )
            return self.exceptions

    def host(self, host_id: str) -> HostAnalysis:
        with self._lock:
            found = self._hosts.get(host_id)
            if found is None:
                store = self._open_graph(host_id)
                learning = self._open_learning(host_id)
                analysis = build_host_analysis(self.kit, store=store, learning=learning)
                found = HostAnalysis(
                    host_id=host_id,
                    store=store,
                    analysis=analysis,
                    tag=secrets.token_hex(4),
                    learning=learning,
                )
                self._hosts[host_id] = found
            return found

    def _open_learning(self, host_id: str) -> HostLearning | None:
        if self.kit.learning is None:
            return None
        if self._models_dir is None:
            raise ProvArmorError("learning mode needs a models directory")
        learning = HostLearning(
            self._models_dir / host_key(host_id),
            settings=self.kit.learning,
            anomaly=self.kit.config.anomaly,
        )
        recorded = next((h.events for h in self.store.hosts() if h.id == host_id), 0)
        learning.note_recorded(recorded)
        return learning

    def loaded_hosts(self) -> list[HostAnalysis]:
        """The hosts analysed here since the start (each with its graph store and lock)."""
        with self._lock:
            return list(self._hosts.values())

    def learning_status(self, host_id: str) -> dict[str, object] | None:
        """The host's learning state (``None``: the manager runs the operator's model, or
        learning is off)."""
        if self.kit.learning is None:
            return None
        with self._lock:
            found = self._hosts.get(host_id)
        if found is not None and found.learning is not None:
            return found.learning.current
        if self._models_dir is None:
            return None
        path = self._models_dir / host_key(host_id) / STATUS_FILE
        try:
            loaded: dict[str, object] = json.loads(path.read_text())
        except FileNotFoundError:  # nothing uploaded yet: its window starts at its first event
            waiting = LearningStatus(
                phase=Phase.LEARNING, window_seconds=self.kit.learning.window_seconds
            )
            return {**waiting.to_dict(), "versions": []}
        except ValueError:
            return {"phase": "unknown", "error": f"unreadable learning status {path}"}
        return loaded

    def ingest(self, agent: AgentRecord, *, sequence: int, body: bytes) -> UploadResult:
        """Analyse and store one batch (or acknowledge a re-delivered one)."""
        events = parse_batch(body, host_id=agent.host_id, max_events=self._max_events)
        host = self.host(agent.host_id)
        with host.lock:
            if host.unstored is not None:
                pending = host.unstored
                stored = self._commit(host, pending)
                if (pending.agent_id, pending.sequence) == (agent.id, sequence):
                    return _result(pending, stored=stored, host=host)
            current = self.store.agent(agent.id)
            acked = current.acked_sequence if current is not None else 0
            if sequence <= acked:
                return UploadResult(acked_sequence=acked, duplicate=True)
            host.take_exceptions(self.exceptions)
            position = graph_position(agent.id)
            if sequence <= int(host.store.meta(position) or 0):
                log.warning(
                    "batch %d of agent %s is in the graph but its findings were not stored "
                    "(restart after a failed commit): storing its %d events without alerts",
                    sequence,
                    agent.id,
                    len(events),
                )
                batch = self._batch(agent, sequence, events)
                return _result(batch, stored=self._commit(host, batch), host=host)
            findings = host.analysis.feed(events, meta={position: str(sequence)}) if events else []
            if host.learning is not None:
                host.learning.after_batch()
            batch = self._batch(agent, sequence, events, findings=findings, host=host)
            return _result(batch, stored=self._commit(host, batch), host=host)

    def _batch(
        self,
        agent: AgentRecord,
        sequence: int,
        events: list[Event],
        *,
        findings: Sequence[Finding] = (),
        host: HostAnalysis | None = None,
    ) -> BatchCommit:
        """The findings to commit; ``host``: the analysis that made them (its tag names the
        incidents, and the alerts its exceptions suppressed since the last batch count)."""
        alerts = [f for f in findings if not isinstance(f, IncidentUpdate)]
        latest: dict[str, Incident] = {}
        for finding in findings:
            if isinstance(finding, IncidentUpdate):
                latest[finding.incident.id] = finding.incident
        return BatchCommit(
            agent_id=agent.id,
            sequence=sequence,
            received_ns=time.time_ns(),
            events=[event_row(e, keep_json=self._keep_json) for e in events],
            alerts=[alert_row(a, host_id=agent.host_id) for a in alerts],
            incidents=[incident_row(i, tag=host.tag) for i in latest.values()] if host else [],
            exception_hits=host.new_hits() if host is not None else {},
        )

    def _commit(self, host: HostAnalysis, batch: BatchCommit) -> bool:
        """Commit ``batch`` (False: the agent's acknowledged sequence already reached it);
        it stays the host's unstored batch until that succeeds."""
        host.unstored = batch
        stored = self.store.commit_batch(batch)
        host.unstored = None
        if stored:
            with self._lock:
                self.events_stored += len(batch.events)
        if stored and self._outputs and (batch.alerts or batch.incidents):
            host.unwritten += self._write(batch)
        return stored

    def _write(self, batch: BatchCommit) -> int:
        """Give each of the batch's findings to every output; returns how many writes
        failed (each is tried: a failure loses only that finding, for that output)."""
        alerts, incidents = findings_of(batch)
        failed = 0
        with self._output_lock:  # hosts commit in parallel; an output takes one at a time
            for output in self._outputs:
                writes = [partial(output.alert, alert) for alert in alerts]
                writes += [partial(output.incident, incident) for incident in incidents]
                errors: list[OSError] = []
                for write in writes:
                    try:
                        write()
                    except OSError as exc:
                        errors.append(exc)
                if errors:
                    failed += len(errors)
                    log.error(
                        "output %s lost %d findings of batch %d of agent %s (they are stored): %s",
                        type(output).__name__,
                        len(errors),
                        batch.sequence,
                        batch.agent_id,
                        errors[-1],
                    )
        return failed

    def close(self) -> None:
        with self._lock:
            for host in self._hosts.values():
                with host.lock:
                    try:
                        host.store.apply(host.analysis.builder.drain(full=True))
                    except StorageError as exc:  # e.g. a full disk: close the rest anyway
                        log.error(
                            "host %s: its open graph edges were not stored: %s", host.host_id, exc
                        )
                    finally:
                        host.store.close()
                        if host.learning is not None:
                            host.learning.close()
            self._hosts.clear()
            with self._output_lock:
                for output in self._outputs:
                    output.close()
