"""The real-world benign corpus: recordings of ordinary work, kept apart from the lab's runs.

A corpus is a directory with a manifest and one dataset per recorded chunk:

    DIR/corpus.json           what this is (format version, kind ``real-world``, the chunks
                              with their role, one of :data:`ROLES`)
    DIR/CHUNK/                a dataset :func:`provarmor.evaluation.dataset.load_dataset` opens
                              (kind ``benign``: every incident in it is a false one)
    DIR/CHUNK/recording.json  how the chunk was recorded: the recipe's root process, how many
                              of the machine's events were kept, the sensor's drop counters

The machine a chunk is recorded on is shared, so the agent sees everybody's activity; only
the events of the recipe's process tree (its root and every descendant, including daemons
that double-forked away) are kept, by :class:`LineageFilter`.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import msgspec

from provarmor.evaluation.dataset import (
    ENTITY_LABELS_FILE,
    EVENTS_FILE,
    META_FILE,
    DatasetMeta,
    EntityLabels,
    load_dataset,
)
from provarmor.evaluation.groundtruth import LABELS_FILE, GroundTruth, write_ground_truth
from provarmor.model.actions import Action
from provarmor.model.errors import ConfigError, ParseError
from provarmor.model.event import Event
from provarmor.model.time_units import seconds_to_ns

CORPUS_FORMAT_VERSION = 1
CORPUS_KIND = "real-world"
MANIFEST_FILE = "corpus.json"
RECORDING_FILE = "recording.json"
WINDOW_ROLES = ("learning", "calibration")
"""One learning window, in recording order: learning mode trains and calibrates on it."""
SCORED_ROLES = ("development", "test")
"""Scored after the window. ``development`` chunks are the ones looked at while fixing
defects: reported apart, never in the test figure."""
EVALUATED_ROLES = (*WINDOW_ROLES, *SCORED_ROLES)
"""Every role the evaluation runs on (the rules run on all of them)."""
ROLES = (*EVALUATED_ROLES, "retired")
"""``retired``: kept for the record (an earlier figure was measured on it) but no longer
evaluated, e.g. recorded before the sensor reported something the detectors now rely on."""
ROOT_START_SLACK_NS = seconds_to_ns(2)
"""How far the root's start time in the events may be from the one read in /proc."""

T = TypeVar("T")


@dataclass(slots=True)
class LineageFilter:
    """Keeps the events of one process tree: the root (matched by pid and start time) and
    every process whose parent was kept when it was forked or exec'd, plus host-wide ``gap``
    events. Events arrive in the sensor's order, so a parent is known before its children;
    a daemon that double-forks away keeps its entity id, so it stays in the tree."""

    root_pid: int
    root_start_ns: int
    slack_ns: int = ROOT_START_SLACK_NS
    seen: int = 0
    kept: int = 0
    gaps: int = 0
    """Host-wide ``gap`` events kept (the sensor lost events of unknown processes)."""
    processes: set[str] = field(default_factory=set)

    def keep(self, event: Event) -> bool:
        self.seen += 1
        process = event.process
        if not process.entity_id and event.event.action == Action.GAP:
            self.gaps += 1  # a host-wide loss: the tree's events may be among the lost
        elif process.entity_id not in self.processes:
            parent = process.parent
            child = parent is not None and parent.entity_id in self.processes
            if not child and not self._is_root(event):
                return False
            self.processes.add(process.entity_id)
        self.kept += 1
        return True

    def _is_root(self, event: Event) -> bool:
        process = event.process
        return process.pid == self.root_pid and (
            abs(process.start - self.root_start_ns) <= self.slack_ns
        )

    def filter(self, events: Iterable[Event]) -> Iterator[Event]:
        return (event for event in events if self.keep(event))

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.seen if self.seen else 0.0


class RecordingInfo(msgspec.Struct, frozen=True, kw_only=True):
    """How a chunk was recorded (``recording.json``)."""

    format_version: int = CORPUS_FORMAT_VERSION
    recipe: str
    recipe_sha256: str = ""
    seed: int
    minutes: float
    root_pid: int
    root_start_ns: int
    started_ns: int
    ended_ns: int
    recipe_exit: int
    machine_events: int
    """Events the agent recorded on the whole machine during the chunk."""
    machine_rejected: int = 0
    """Lines of the machine's recording that did not parse (counted, left out)."""
    kept_events: int
    kept_processes: int
    kept_gaps: int = 0
    """Host-wide gap events kept with the tree's events."""
    leftovers_stopped: tuple[str, ...] = ()
    """The recipe's processes still running when it ended (pid and command line), stopped
    by the recorder."""
    ring_buffer_pages: int = 0
    """The eBPF sensor's per-CPU ring buffer (``agent.ebpf_perf_rb_pages``)."""
    sensor_counters: dict[str, int] = msgspec.field(default_factory=dict)
    """The agent's counters at the end (``sensor.lost``, ``queue.dropped`` ...)."""

    @property
    def kept_fraction(self) -> float:
        return self.kept_events / self.machine_events if self.machine_events else 0.0


class ChunkEntry(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    """The chunk's directory, relative to the corpus."""
    role: str


class CorpusManifest(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int = CORPUS_FORMAT_VERSION
    kind: str = CORPUS_KIND
    description: str = ""
    chunks: tuple[ChunkEntry, ...] = ()


def write_chunk(  # noqa: PLR0913  (what the dataset records)
    out_dir: Path,
    events: Iterable[Event],
    *,
    name: str,
    seed: int,
    started_ns: int,
    ended_ns: int,
    completed: bool,
    sensor: str,
) -> DatasetMeta:
    """Write a chunk's events as a benign dataset (its recording info is written apart, by
    :func:`write_recording`, once the events were counted)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    count, host_id = 0, ""
    encoder = msgspec.json.Encoder()
    with gzip.open(out_dir / EVENTS_FILE, "wb", compresslevel=9) as target:
        for event in events:
            target.write(encoder.encode(event) + b"\n")
            count += 1
            host_id = host_id or event.host.id
    truth = GroundTruth(
        kind="benign",
        name=name,
        seed=seed,
        run_id=name,
        started_ns=started_ns,
        ended_ns=ended_ns,
        title=f"real-world corpus chunk {name}",
        completed=completed,
    )
    write_ground_truth(truth, out_dir / LABELS_FILE)
    _write_json(out_dir / ENTITY_LABELS_FILE, EntityLabels())
    meta = DatasetMeta(
        name=name,
        kind="benign",
        seed=seed,
        sensor=sensor,
        host_id=host_id,
        events=count,
        started_ns=started_ns,
        ended_ns=ended_ns,
        created_ns=time.time_ns(),
    )
    _write_json(out_dir / META_FILE, meta)
    return meta


def write_recording(out_dir: Path, recording: RecordingInfo) -> None:
    _write_json(out_dir / RECORDING_FILE, recording)


def _write_json(path: Path, value: object) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(value), indent=2) + b"\n")


def _decode(path: Path, kind: type[T]) -> T:
    try:
        value = msgspec.json.decode(path.read_bytes(), type=kind)
    except OSError as exc:
        raise ConfigError(f"cannot read {path.name}: {exc.strerror}", location=str(path)) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(str(exc), location=str(path)) from None
    version = getattr(value, "format_version", CORPUS_FORMAT_VERSION)
    if version != CORPUS_FORMAT_VERSION:
        raise ParseError(f"format {version} is not supported", location=str(path))
    return value


def read_manifest(corpus: Path) -> CorpusManifest:
    manifest = _decode(corpus / MANIFEST_FILE, CorpusManifest)
    for number, chunk in enumerate(manifest.chunks, 1):
        if chunk.role not in ROLES:
            raise ParseError(
                f"chunk {number} ({chunk.path}): role {chunk.role!r} is not one of "
                f"{', '.join(ROLES)}",
                location=str(corpus / MANIFEST_FILE),
            )
    if manifest.kind != CORPUS_KIND:
        raise ParseError(
            f"kind {manifest.kind!r} is not {CORPUS_KIND!r}", location=str(corpus / MANIFEST_FILE)
        )
    return manifest


def read_recording(chunk: Path) -> RecordingInfo:
    return _decode(chunk / RECORDING_FILE, RecordingInfo)


def add_chunk(corpus: Path, chunk: Path, *, role: str) -> CorpusManifest:
    """Enter a recorded chunk in the corpus manifest (created when missing); a chunk already
    listed keeps one entry, with the new role."""
    if role not in ROLES:
        raise ConfigError(f"role {role!r} is not one of {', '.join(ROLES)}")
    load_dataset(chunk)  # a chunk must open as a dataset before it is listed
    relative = str(chunk.resolve().relative_to(corpus.resolve()))
    path = corpus / MANIFEST_FILE
    manifest = read_manifest(corpus) if path.exists() else CorpusManifest()
    chunks = [c for c in manifest.chunks if c.path != relative]
    chunks.append(ChunkEntry(path=relative, role=role))
    updated = msgspec.structs.replace(manifest, chunks=tuple(sorted(chunks, key=lambda c: c.path)))
    _write_json(path, updated)
    return updated
