"""Server-side ingest: an uploaded batch -> validated events -> the host's analysis ->
events, alerts and incident versions stored with the batch's sequence number.

Each host has one :class:`~provarmor.pipeline.analysis.Analysis` over its own graph store
(a SQLite file under the state directory, or a schema of the PostgreSQL database), made on
its first upload and fed under a per-host lock, so a host's batches are analysed one at a
time and in order. A batch whose sequence the agent already had acknowledged is answered as
a duplicate without touching the analysis: re-delivery after an outage adds nothing twice.

A bus worker hands over a whole fetch at once (:meth:`Ingestor.ingest_many`): each host's
batches of it (a run) are analysed in order under the host's lock, and the findings of the
whole fetch are committed in one transaction. An incident's story is built once per run,
after its last batch (its updates' versions are counted batch by batch all the same), and
goes with that batch; a host is checkpointed at most once per run, with its last batch. A
bus batch names where its agent's batch before it ended (``after``): one that follows a gap
(JetStream re-sends an unacknowledged batch only after its ack wait, so after a kill or a
broker restart later batches can come first) has the batches in between taken from the
replay source and analysed first (:attr:`UploadResult.filled`); those the source does not
have either are lost and counted (:attr:`UploadResult.lost`).

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
as its unstored batches and commits them before anything else, answering the re-sent batches
without analysing them twice; after a restart in between, the graph's sequence shows the batch
is already in the graph, and only its events are stored (its alerts are lost, logged).

Every committed alert and incident version also goes to the manager's outputs (files in a
format of the registries, from the settings), after its commit: a re-sent batch writes
nothing twice. An output that fails loses the findings only for itself (they are in the
store); they are logged and counted (:attr:`UploadResult.unwritten`).

Incident ids from a host's incident engine (``inc-c3``) are unique only within that engine;
the manager's id appends the host analysis's random tag (``inc-c3-5f0c9a1e``), so ids differ
across hosts and across analyses of one host that start afresh.

Checkpoints (``checkpoints=True``, the default): a run's commit also stores the host's
whole analysis state after it (:mod:`provarmor.pipeline.checkpoint`: graph builder, rule
windows, lineage, anomaly state, campaigns and incidents, with the tag and the exception
counts), in the findings store's transaction, replacing the last. Opening a host's analysis
(after a restart, or on another worker) restores it, so the next batch is analysed exactly
as if nothing had happened: same incident ids and versions, no alert twice. The analysis
writes its graph behind (:class:`~provarmor.graph.read_cache.ReadCachedStore`): a batch's
graph delta waits in memory, is part of the checkpoint, and reaches the graph store just
after the checkpoint is committed, so the graph never holds more than the checkpoint knows
(a restored checkpoint whose writes did not reach the graph writes them then).

Without a ``replay`` source (uploads over HTTP, whose agents forget a batch once it is
acknowledged) every batch (a run of one) carries a checkpoint. With one (the bus: its stream
keeps the batches) a host is checkpointed only every ``checkpoint_batches`` batches or
``checkpoint_seconds`` (whichever comes first; :meth:`Ingestor.settle_idle` checkpoints the
hosts that went quiet), and the batches in between are committed with their findings alone:
a restored analysis behind the findings store takes the batches after its checkpoint from
the replay source again, analysing them exactly as the first time and dropping their
findings, which are stored already (counted in :attr:`CheckpointCounters.replayed`). A
checkpoint that cannot be restored exactly (another build, other rules, model or settings,
a damaged one, a graph that does not match it, batches the replay source no longer has) is
logged with the reason and counted (:attr:`Ingestor.checkpoints`), and the host's analysis
is rebuilt from its graph as without checkpoints. Learning mode's detector keeps its own,
periodic checkpoint (:mod:`provarmor.pipeline.learning`) and is not in this one.

A host whose batches another process stored meanwhile (a worker that gets back a partition
it had before) is seen by the agent's acknowledged sequence: its analysis in memory is
stale, so it is set aside and opened again from the checkpoint before the batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import pickle
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import msgspec

from provarmor.detection.anomaly.learning import LearningStatus, Phase
from provarmor.detection.context import ContextDetector
from provarmor.detection.suppress import SuppressingDetector, Suppression
from provarmor.graph.builder import GraphDelta
from provarmor.graph.read_cache import ReadCachedStore
from provarmor.graph.store import PersistentGraphStore
from provarmor.manager.detectors import DetectionKit, host_analysis_parts, kit_digest
from provarmor.manager.exceptions import ExceptionState
from provarmor.manager.store import (
    AgentRecord,
    AlertRow,
    BatchCommit,
    Checkpoint,
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
from provarmor.pipeline.checkpoint import Shared, dump_analysis, load_analysis
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
    filled: int = 0
    """Batches of the agent before this one, delivered out of order, that were taken from
    the replay source and stored first."""
    lost: int = 0
    """Spool sequence numbers (events) between the agent's last stored batch and this one
    that never arrived and that the replay source does not have: lost."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    """One batch for :meth:`Ingestor.ingest_many`."""

    agent: AgentRecord
    sequence: int
    body: bytes
    position: int = 0
    """Its place in the replay source (the bus stream's sequence)."""
    after: int | None = None
    """Where the agent's batch before it ended (the bus message says), when known."""


@dataclass(frozen=True, slots=True)
class ExceptionSet:
    """The active exceptions as suppressions; ``generation`` grows with each reload."""

    generation: int
    suppressions: tuple[Suppression, ...]


@dataclass(slots=True)
class CheckpointCounters:
    """What became of the hosts' checkpoints in this process."""

    written: int = 0
    bytes: int = 0
    """Size of the checkpoints written (all together)."""
    seconds: float = 0.0
    """CPU time spent writing them into memory (pickling and compressing)."""
    failed: int = 0
    """Checkpoints that could not be made (logged; the batch is stored without one)."""
    restored: int = 0
    """Host analyses restored from their checkpoint."""
    rebuilt: int = 0
    """Host analyses with a graph but no usable checkpoint: rebuilt from the graph (the
    log says why)."""
    replayed: int = 0
    """Batches taken again from the replay source onto a restored checkpoint."""
    graph_writes: int = 0
    """Flushes of a host's pending graph writes (one transaction each)."""
    graph_failed: int = 0
    """Flushes that failed (logged; the writes stay pending for the next checkpoint)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredBatch:
    """A batch as the replay source (the bus's stream) still holds it."""

    position: int
    """Its place in the source (the stream's sequence)."""
    agent_id: str
    sequence: int
    body: bytes
    after: int | None = None
    """Where the agent's batch before it ended, when the message says."""


Replay = Callable[[str, int], Iterable[StoredBatch]]
"""``(host id, position)`` -> the host's batches after ``position``, in order."""


@dataclass(slots=True)
class HostAnalysis:
    host_id: str
    store: PersistentGraphStore
    analysis: Analysis
    tag: str
    shared: Shared
    """What the analysis shares with the kit and the host (its checkpoints refer to it)."""
    learning: HostLearning | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    exceptions: int = 0
    """The generation of the exception set the analysis applies."""
    counted: Counter[str] = field(default_factory=Counter)
    """Suppressions per exception already committed with earlier batches."""
    unstored: list[BatchCommit] = field(default_factory=list)
    """Batches the analysis took in (their graph writes pending) whose findings are not
    committed yet (they wait for their run's commit, or it failed)."""
    unwritten: int = 0
    """Findings an output failed to write, not yet in an :class:`UploadResult`."""
    committed: dict[str, int] = field(default_factory=dict)
    """Agent id -> the last of its batches this analysis took in (committed, or restored):
    a findings store that acknowledges more went on without it (another worker had the
    host meanwhile)."""
    last: tuple[str, int, int] | None = None
    """``(agent id, sequence, position)`` of the last batch the analysis took in (its
    checkpoint names it)."""
    since_checkpoint: int = 0
    """Batches committed since the last checkpoint."""
    checkpointed: bool = False
    """Whether the analysis has a checkpoint (a fresh one's first batch carries one, so
    that its tag is never lost)."""
    checkpoint_at: float = field(default_factory=time.monotonic)

    @property
    def graph(self) -> ReadCachedStore:
        """The analysis's view of its graph store (with the writes still pending)."""
        graph = self.analysis.store
        assert isinstance(graph, ReadCachedStore)  # host_analysis_parts makes one
        return graph

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


@dataclass(frozen=True, slots=True)
class _Answer:
    """What an upload of :meth:`Ingestor.ingest_many` came to, before the commit."""

    host: HostAnalysis
    batch: BatchCommit
    filled: int = 0
    lost: int = 0


@dataclass(slots=True)
class _Fetch:
    """The answers of one :meth:`Ingestor.ingest_many` as they are made."""

    results: list[UploadResult | ProvArmorError | None]
    answers: dict[int, _Answer] = field(default_factory=dict)
    """Upload index -> its batch, analysed and waiting for the commit."""
    stored: dict[tuple[str, int], bool] = field(default_factory=dict)
    """``(agent id, sequence)`` -> whether its commit stored it."""


def _result(answer: _Answer, *, stored: bool) -> UploadResult:
    batch = answer.batch
    return UploadResult(
        acked_sequence=batch.sequence,
        duplicate=not stored,
        events=len(batch.events),
        alerts=len(batch.alerts),
        incidents=len(batch.incidents),
        unwritten=answer.host.take_unwritten(),
        filled=answer.filled,
        lost=answer.lost,
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
        checkpoints: bool = True,
        replay: Replay | None = None,
        checkpoint_batches: int = 1,
        checkpoint_seconds: float = 0.0,
    ) -> None:
        """``models_dir``: where learning hosts keep their model archives (required when
        ``kit.learning`` is set). ``outputs``: where committed findings also go (closed by
        :meth:`close`). ``checkpoints``: store each host's analysis state and restore it;
        with a ``replay`` source only every ``checkpoint_batches`` batches or
        ``checkpoint_seconds`` (see the module docstring)."""
        self.store = store
        self._replay = replay
        self._every = max(checkpoint_batches, 1) if replay is not None else 1
        self._every_s = checkpoint_seconds if replay is not None else 0.0
        self.kit = kit
        self._kit_digest = kit_digest(kit) if checkpoints else ""
        self.checkpoints = CheckpointCounters()
        self._checkpointing = checkpoints
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
        """The host's analysis, opened (restored from its checkpoint) on first use."""
        with self._lock:
            found = self._hosts.get(host_id)
            if found is None:
                store = self._open_graph(host_id)
                try:
                    learning = self._open_learning(host_id)
                    found = self._fresh(host_id, store, learning)
                    if self._checkpointing and not self._restore(found):
                        found = self._fresh(host_id, store, learning)  # the graph has grown
                except BaseException:
                    store.close()
                    raise
                self._hosts[host_id] = found
            return found

    def _fresh(
        self, host_id: str, store: PersistentGraphStore, learning: HostLearning | None
    ) -> HostAnalysis:
        analysis, shared = host_analysis_parts(
            self.kit, store=store, learning=learning, write_behind=True
        )
        return HostAnalysis(
            host_id=host_id,
            store=store,
            analysis=analysis,
            tag=secrets.token_hex(4),
            shared=shared,
            learning=learning,
        )

    def _restore(self, host: HostAnalysis) -> bool:
        """Put the host's checkpointed analysis in place of the fresh one, when it restores
        exactly (True); else False (logged and counted when the host has a graph)."""
        saved = self.store.checkpoint(host.host_id)
        if saved is None or not saved.data:
            if host.store.next_edge_id() > 1:
                self._rebuilt(
                    host,
                    "its last batch was stored without a checkpoint (checkpoints off, or "
                    "one failed: see the log)"
                    if saved is not None
                    else "it has no checkpoint",
                )
            return True  # nothing was changed: the fresh analysis stands
        location = (
            f"checkpoint of host {host.host_id!r} (batch {saved.sequence} of agent "
            f"{saved.agent_id})"
        )
        try:
            analysis, extra = load_analysis(
                saved.data, host.shared, kit=self._kit_digest, location=location
            )
            tag, counted = extra.get("tag"), extra.get("counted")
            position = extra.get("position", 0)
            if not isinstance(tag, str) or not isinstance(counted, dict):
                raise ParseError(
                    "its header lacks the tag or the exception counts", location=location
                )
            if not isinstance(position, int):
                raise ParseError("its header's position is not a number", location=location)
            host.analysis = analysis
            self._graph_at_checkpoint(host, saved, location=location)
            host.tag = tag
            host.counted = Counter({str(key): int(value) for key, value in counted.items()})
            host.committed[saved.agent_id] = saved.sequence
            host.last = (saved.agent_id, saved.sequence, position)
            host.checkpointed = True
            self._catch_up(host, location=location)
        except ParseError as exc:  # a StorageError (the graph, the bus) is tried again later
            self._rebuilt(host, str(exc))
            return False
        self.checkpoints.restored += 1
        log.info("host %s: analysis restored from its %s", host.host_id, location)
        return True

    def _graph_at_checkpoint(self, host: HostAnalysis, saved: Checkpoint, *, location: str) -> None:
        """Bring the graph store to the checkpoint: its pending writes are written when the
        store lacks them (the process stopped between the checkpoint's commit and their
        flush); :class:`ParseError` when the graph does not match the checkpoint."""
        graph, store = host.graph, host.store
        if graph.pending:
            if all(store.meta(key) == value for key, value in graph.pending_meta.items()):
                graph.discard_pending()
            else:
                graph.flush()
        graph_at = int(store.meta(graph_position(saved.agent_id)) or 0)
        if graph_at != saved.sequence:
            raise ParseError(
                f"the host's graph holds batch {graph_at} of the agent, the checkpoint "
                f"{saved.sequence}",
                location=location,
            )
        if store.next_edge_id() != host.analysis.builder.next_edge_id:
            raise ParseError(
                f"the host's graph ends at edge {store.next_edge_id() - 1}, the checkpoint "
                f"at {host.analysis.builder.next_edge_id - 1}",
                location=location,
            )

    def _catch_up(self, host: HostAnalysis, *, location: str) -> None:
        """Analyse again the batches the findings store has beyond the checkpoint (taken
        from the replay source; their findings are stored already and dropped), so the
        analysis is where the store is; :class:`ParseError` when that cannot be done."""
        assert host.last is not None
        agent_id, at, position = host.last
        agent = self.store.agent(agent_id)
        acked = agent.acked_sequence if agent is not None else 0
        if acked == at:
            return
        if acked < at or self._replay is None:
            raise ParseError(
                f"the findings store acknowledges batch {acked} of the agent, the checkpoint "
                f"{at}" + ("" if acked < at else " (and there is no source to replay them)"),
                location=location,
            )
        key = graph_position(agent_id)
        for stored in self._replay(host.host_id, position):
            if stored.agent_id != agent_id or stored.sequence <= at:
                continue  # another agent's, or one re-sent (answered as a duplicate)
            if stored.sequence > acked:
                break
            events = parse_batch(stored.body, host_id=host.host_id, max_events=self._max_events)
            host.analysis.feed(events, meta={key: str(stored.sequence)})
            host.new_hits()  # counted with the batch when it was stored
            at, position = stored.sequence, stored.position
            host.since_checkpoint += 1
            self.checkpoints.replayed += 1
        if at != acked:
            raise ParseError(
                f"the replay source has the agent's batches up to {at}, the findings store "
                f"acknowledges {acked}",
                location=location,
            )
        host.committed[agent_id] = at
        host.last = (agent_id, at, position)

    def _rebuilt(self, host: HostAnalysis, reason: str) -> None:
        self.checkpoints.rebuilt += 1
        log.warning(
            "host %s: its analysis is rebuilt from its graph (incidents start afresh): %s",
            host.host_id,
            reason,
        )

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

    def ingest(
        self, agent: AgentRecord, *, sequence: int, body: bytes, position: int = 0
    ) -> UploadResult:
        """Analyse and store one batch (or acknowledge a re-delivered one); ``position``:
        its place in the replay source."""
        upload = Upload(agent=agent, sequence=sequence, body=body, position=position)
        (result,) = self.ingest_many([upload])
        if isinstance(result, ProvArmorError):
            raise result
        return result

    def ingest_many(self, uploads: Sequence[Upload]) -> list[UploadResult | ProvArmorError]:
        """Analyse many batches (a worker's fetch: several hosts, each host's in the order
        given) and store their findings in one transaction; one result per upload, in order.

        A batch that cannot be stored gets its error in place of a result: a
        :class:`StorageError` (try again later; the host's later batches here get it too),
        any other :class:`ProvArmorError` (never storable: bad JSON, too many events). The
        others go on. A failed commit raises :class:`StorageError`: nothing is stored, each
        host keeps its analysed batches as unstored and commits them before anything else
        (the re-sent batches are answered from them, not analysed twice)."""
        fetch = _Fetch(results=[None] * len(uploads))
        runs: dict[str, list[tuple[int, list[Event], Upload]]] = {}
        for index, upload in enumerate(uploads):
            try:
                events = parse_batch(
                    upload.body, host_id=upload.agent.host_id, max_events=self._max_events
                )
            except ProvArmorError as exc:
                fetch.results[index] = exc
                continue
            runs.setdefault(upload.agent.host_id, []).append((index, events, upload))
        with contextlib.ExitStack() as held:
            hosts = [self._run(host_id, runs[host_id], held, fetch) for host_id in sorted(runs)]
            fetch.stored |= self._commit(
                [(host, batch) for host in hosts if host is not None for batch in host.unstored]
            )
            for index, answer in fetch.answers.items():
                batch = answer.batch
                fetch.results[index] = _result(
                    answer, stored=fetch.stored.get((batch.agent_id, batch.sequence), False)
                )
        done = [result for result in fetch.results if result is not None]
        assert len(done) == len(uploads)  # every upload is answered
        return done

    def _locked(self, host_id: str, held: contextlib.ExitStack) -> HostAnalysis:
        """The host's analysis with its lock taken (released when ``held`` closes)."""
        while True:
            host = self.host(host_id)
            held.enter_context(host.lock)
            if self._hosts.get(host_id) is host:
                return host
            # set aside while this thread waited: take the one now open

    def _open_run(
        self, host_id: str, agents: set[str], held: contextlib.ExitStack, fetch: _Fetch
    ) -> tuple[HostAnalysis, dict[str, int], dict[tuple[str, int], BatchCommit]]:
        """The host (locked), its agents' acknowledged sequences, and its batches of a
        failed commit (committed now, first); a stale analysis is opened again;
        :class:`StorageError` when that cannot be done."""
        host = self._locked(host_id, held)
        earlier = {(b.agent_id, b.sequence): b for b in host.unstored}
        if earlier:
            fetch.stored |= self._commit([(host, batch) for batch in host.unstored])
        acked = self._acked_for(host, agents)
        if acked is None:  # another process went on with the host: open it again
            self._set_aside(host)
            host = self._locked(host_id, held)
            acked = self._acked_for(host, agents)
            if acked is None:  # a restore never leaves it behind: never loop on it
                raise StorageError(
                    "its analysis is behind the findings store even when opened again",
                    location=f"host {host_id}",
                )
        return host, acked, earlier

    def _run(
        self,
        host_id: str,
        run: list[tuple[int, list[Event], Upload]],
        held: contextlib.ExitStack,
        fetch: _Fetch,
    ) -> HostAnalysis | None:
        """Analyse one host's batches of an :meth:`ingest_many` in order, under its lock;
        their commits wait in ``host.unstored`` (the last carries the checkpoint when one
        is due: at most one per run); ``None`` when the host cannot be opened."""
        try:
            host, acked, earlier = self._open_run(
                host_id, {upload.agent.id for _, _, upload in run}, held, fetch
            )
        except StorageError as exc:
            for index, _, _ in run:
                fetch.results[index] = exc
            return None
        before = len(host.unstored)
        for number, (index, events, upload) in enumerate(run):
            agent = upload.agent
            if (agent.id, upload.sequence) in earlier:
                fetch.answers[index] = _Answer(host, earlier[agent.id, upload.sequence])
                continue
            if upload.sequence <= acked[agent.id]:
                fetch.results[index] = UploadResult(acked_sequence=acked[agent.id], duplicate=True)
                continue
            try:
                filled, lost = self._fill_gap(host, agent, acked, upload)
                batch = self._analyse(host, agent, upload.sequence, events, upload.position)
            except StorageError as exc:  # this one and the host's later ones come again
                for later, _, _ in run[number:]:
                    fetch.results[later] = exc
                break
            except ProvArmorError as exc:
                fetch.results[index] = exc
                continue
            acked[agent.id] = upload.sequence
            host.unstored.append(batch)
            fetch.answers[index] = _Answer(host, batch, filled=filled, lost=lost)
        if len(host.unstored) > before:
            self._close_run(host, len(host.unstored) - before)
        return host

    def _acked_for(self, host: HostAnalysis, agents: set[str]) -> dict[str, int] | None:
        """Each agent's acknowledged sequence in the findings store; ``None`` when the
        host's analysis is stale (the store acknowledges batches it never took in)."""
        acked: dict[str, int] = {}
        for agent_id in sorted(agents):
            current = self.store.agent(agent_id)
            acked[agent_id] = current.acked_sequence if current is not None else 0
            if (
                self._checkpointing
                and host.committed.get(agent_id, acked[agent_id]) != acked[agent_id]
            ):
                return None
        return acked

    def _fill_gap(
        self, host: HostAnalysis, agent: AgentRecord, acked: dict[str, int], upload: Upload
    ) -> tuple[int, int]:
        """The batches the agent sent between its last stored one and ``upload`` (its
        ``after`` says where the one before it ended), when they were delivered out of
        order (after a worker's kill or a broker restart JetStream re-sends a batch only
        after its ack wait): taken from the replay source and analysed first, in order.
        Returns how many, and the spool sequence numbers (events) in between that the
        source does not have either: lost."""
        if upload.after is None or upload.after <= acked[agent.id]:
            return 0, 0
        filled = lost = 0
        if self._replay is not None:
            last = host.last
            since = last[2] if last is not None and last[0] == agent.id else 0
            for stored in self._replay(host.host_id, since):
                if stored.agent_id != agent.id or stored.sequence <= acked[agent.id]:
                    continue
                if stored.sequence > upload.after:
                    break
                try:
                    events = parse_batch(
                        stored.body, host_id=host.host_id, max_events=self._max_events
                    )
                except ProvArmorError as exc:  # its own delivery is rejected: a gap
                    log.error("host %s: batch %d skipped: %s", host.host_id, stored.position, exc)
                    continue
                if stored.after is not None and stored.after > acked[agent.id]:
                    lost += stored.after - acked[agent.id]
                host.unstored.append(
                    self._analyse(host, agent, stored.sequence, events, stored.position)
                )
                acked[agent.id] = stored.sequence
                filled += 1
        if filled:
            log.info(
                "host %s: %d batches of agent %s delivered out of order were taken from the "
                "stream first",
                host.host_id,
                filled,
                agent.id,
            )
        return filled, lost + max(upload.after - acked[agent.id], 0)

    def _set_aside(self, host: HostAnalysis) -> None:
        log.info(
            "host %s: batches were stored by another process since this one analysed it; "
            "its analysis is opened again from the checkpoint",
            host.host_id,
        )
        with self._lock:
            del self._hosts[host.host_id]
        host.store.close()

    def _analyse(
        self,
        host: HostAnalysis,
        agent: AgentRecord,
        sequence: int,
        events: list[Event],
        position: int,
    ) -> BatchCommit:
        """One batch through the host's analysis (under its lock): its commit, without a
        checkpoint."""
        host.take_exceptions(self.exceptions)
        key = graph_position(agent.id)
        if sequence <= int(host.graph.stored_meta(key) or 0):  # an older build wrote graphs first
            log.warning(
                "batch %d of agent %s is in the graph but its findings were not stored "
                "(restart after a failed commit): storing its %d events without alerts",
                sequence,
                agent.id,
                len(events),
            )
            return self._batch(agent, sequence, events, host=host, analysed=False)
        if events:
            findings = host.analysis.feed(events, meta={key: str(sequence)}, defer_stories=True)
        else:
            findings = []
            host.graph.apply(GraphDelta(), meta={key: str(sequence)})
        if host.learning is not None:
            host.learning.after_batch()
        host.last = (agent.id, sequence, position)
        return self._batch(agent, sequence, events, findings=findings, host=host)

    def _close_run(self, host: HostAnalysis, analysed: int) -> None:
        """After a run of ``analysed`` batches: the stories of the incidents it updated,
        built once (their latest versions go with the last batch: the run commits as one),
        and the checkpoint on the last batch when one is due."""
        last = host.unstored[-1]
        incidents = host.analysis.engine.take_pending()
        if incidents:
            rows = [incident_row(incident, tag=host.tag) for incident in incidents]
            last = dataclasses.replace(last, incidents=[*last.incidents, *rows])
        if not self._checkpointing or self._due(host, analysed):
            checkpoint = self._checkpoint(
                host, agent_id=last.agent_id, sequence=last.sequence, now=time.time_ns()
            )
            last = dataclasses.replace(last, checkpoint=checkpoint)
        host.unstored[-1] = last

    def _due(self, host: HostAnalysis, batches: int) -> bool:
        """Whether a run of ``batches`` ends with the host's checkpoint."""
        return (
            not host.checkpointed
            or host.since_checkpoint + batches >= self._every
            or (self._every_s > 0 and time.monotonic() - host.checkpoint_at >= self._every_s)
        )

    def _batch(  # noqa: PLR0913
        self,
        agent: AgentRecord,
        sequence: int,
        events: list[Event],
        *,
        host: HostAnalysis,
        findings: Sequence[Finding] = (),
        analysed: bool = True,
    ) -> BatchCommit:
        """The batch's events and alerts to commit (its incidents' updates come at the end
        of the run: :meth:`_close_run`); ``host``: the analysis that made them (the alerts
        its exceptions suppressed since the last batch count); ``analysed``: whether it saw
        the batch (else it only stores the events)."""
        alerts = [f for f in findings if not isinstance(f, IncidentUpdate)]
        return BatchCommit(
            agent_id=agent.id,
            sequence=sequence,
            received_ns=time.time_ns(),
            events=[event_row(e, keep_json=self._keep_json) for e in events],
            alerts=[alert_row(a, host_id=agent.host_id) for a in alerts],
            exception_hits=host.new_hits() if analysed else {},
        )

    def _checkpoint(
        self, host: HostAnalysis, *, agent_id: str, sequence: int, now: int
    ) -> Checkpoint:
        """The host's checkpoint after this batch; empty when checkpoints are off or it could
        not be made (an empty one replaces the last, which no longer matches the graph)."""
        data = b""
        if self._checkpointing:
            started = time.thread_time()
            try:
                position = host.last[2] if host.last is not None else 0
                data = dump_analysis(
                    host.analysis,
                    host.shared,
                    kit=self._kit_digest,
                    extra={"tag": host.tag, "counted": dict(host.counted), "position": position},
                )
            except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
                self.checkpoints.failed += 1
                log.error("host %s: no checkpoint after batch %d: %s", host.host_id, sequence, exc)
            else:
                self.checkpoints.written += 1
                self.checkpoints.bytes += len(data)
            self.checkpoints.seconds += time.thread_time() - started
        return Checkpoint(
            host=host.host_id, agent_id=agent_id, sequence=sequence, written_ns=now, data=data
        )

    def _commit(
        self, pending: list[tuple[HostAnalysis, BatchCommit]]
    ) -> dict[tuple[str, int], bool]:
        """Commit the hosts' unstored batches in one transaction, each stamped with the time
        (after their analysis: ``received_ns``); ``(agent id, sequence)`` -> stored (False:
        the agent's acknowledged sequence already reached it). A failure raises and leaves
        them unstored."""
        if not pending:
            return {}
        now = time.time_ns()
        stamped = [dataclasses.replace(batch, received_ns=now) for _, batch in pending]
        stored = self.store.commit_batches(stamped)
        answered: dict[tuple[str, int], bool] = {}
        for (host, _), batch, ok in zip(pending, stamped, stored, strict=True):
            host.unstored.clear()
            answered[batch.agent_id, batch.sequence] = ok
            if not ok:
                continue
            with self._lock:
                self.events_stored += len(batch.events)
            host.committed[batch.agent_id] = batch.sequence
            if batch.checkpoint is None:
                host.since_checkpoint += 1
            else:
                self._flush(host)
            if self._outputs and (batch.alerts or batch.incidents):
                host.unwritten += self._write(batch)
        return answered

    def _flush(self, host: HostAnalysis) -> None:
        """Write the host's pending graph, once the checkpoint that carries it is committed
        (a failure keeps it pending: the next checkpoint carries it again). A host's first
        checkpoint counts as made up to half an interval earlier (a fraction fixed by its
        id): hosts that started together are not all checkpointed in the same fetch again
        and again (a burst that every batch waiting behind it would pay in latency)."""
        host.since_checkpoint = 0
        host.checkpoint_at = time.monotonic()
        if not host.checkpointed:
            host.checkpoint_at -= self._every_s / 2 * int(host_key(host.host_id)[1:9], 16) / 16**8
        host.checkpointed = True
        try:
            host.graph.flush()
        except StorageError as exc:
            self.checkpoints.graph_failed += 1
            log.error(
                "host %s: graph not written (kept for the next checkpoint): %s", host.host_id, exc
            )
        else:
            self.checkpoints.graph_writes += 1

    def settle(self, host: HostAnalysis) -> None:
        """Checkpoint the host now and write its pending graph (under the host's lock):
        before its graph is pruned, when it went quiet, when closing. Nothing when nothing
        waits, or when a batch's findings wait for their commit (the batch comes again)."""
        if not host.graph.pending or host.unstored or host.last is None:
            return
        if self._checkpointing:
            agent_id, sequence, _ = host.last
            checkpoint = self._checkpoint(
                host, agent_id=agent_id, sequence=sequence, now=time.time_ns()
            )
            if not self.store.save_checkpoint(checkpoint):
                return  # another process went on with the host: set aside at its next batch
        self._flush(host)

    def settle_idle(self, seconds: float) -> int:
        """:meth:`settle` each host whose graph writes have waited ``seconds`` or more since
        its last checkpoint (a host that went quiet); returns how many were settled."""
        settled = 0
        for host in self.loaded_hosts():
            if not host.graph.pending or time.monotonic() - host.checkpoint_at < seconds:
                continue
            with host.lock:
                if self._hosts.get(host.host_id) is not host:
                    continue  # set aside meanwhile (its store is closed)
                try:
                    self.settle(host)
                except StorageError as exc:
                    log.error("host %s: not checkpointed: %s", host.host_id, exc)
                    continue
            settled += 1
        return settled

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
                        if self._checkpointing:
                            # the graph stays as the checkpoint expects (its builder writes
                            # the nodes' latest times later); a batch whose findings wait
                            # for their commit comes again and is analysed afresh
                            self.settle(host)
                        else:  # the nodes' latest times
                            host.graph.flush()
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
