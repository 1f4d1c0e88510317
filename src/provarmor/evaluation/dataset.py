"""A lab dataset on disk: what ``provarmor lab run`` writes and ``provarmor eval`` reads.

    DIR/events.ndjson.gz      canonical events, as the agent recorded them
    DIR/raw.jsonl.gz          the sensor's raw records (when the sensor provides them)
    DIR/labels.json           ground truth written out of band by the lab runner
    DIR/entity-labels.json    the attacker's processes, events, files and endpoints,
                              derived from the ground truth and the recorded events
    DIR/dataset.json          what this is (format version, scenario, seed, sensor, counts)
    DIR/transcript.log        what the lab did, step by step
    DIR/actions.jsonl         with ``lab run --response``: the recording agent's response
                              audit trail (:mod:`provarmor.response.audit`), every action
                              it proposed, ran and how it ended

Labels never appear inside the event data: they live in their own files, and detectors are
only ever given ``events.ndjson.gz``.
"""

from __future__ import annotations

import gzip
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from provarmor.evaluation.groundtruth import LABELS_FILE, GroundTruth, load_ground_truth
from provarmor.evaluation.labels import label_events
from provarmor.model.errors import ConfigError, ParseError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

DATASET_FORMAT_VERSION = 1
EVENTS_FILE = "events.ndjson.gz"
RAW_FILE = "raw.jsonl.gz"
ENTITY_LABELS_FILE = "entity-labels.json"
META_FILE = "dataset.json"
TRANSCRIPT_FILE = "transcript.log"
ACTIONS_FILE = "actions.jsonl"


class DatasetMeta(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int = DATASET_FORMAT_VERSION
    name: str
    kind: str
    """``scenario`` or ``benign``."""
    seed: int
    sensor: str
    host_id: str = ""
    events: int = 0
    rejected: int = 0
    started_ns: int = 0
    ended_ns: int = 0
    created_ns: int = 0


class EntityLabels(msgspec.Struct, frozen=True, kw_only=True):
    processes: list[str] = msgspec.field(default_factory=list)
    events: list[str] = msgspec.field(default_factory=list)
    files: list[str] = msgspec.field(default_factory=list)
    endpoints: list[str] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Dataset:
    path: Path
    meta: DatasetMeta
    truth: GroundTruth
    labels: EntityLabels

    def events(self, report: IngestReport | None = None) -> Iterator[Event]:
        """The recorded events (never the labels)."""
        report = report or IngestReport(source=str(self.path / EVENTS_FILE))
        return read_ndjson(self.path / EVENTS_FILE, report=report, host=HostContext())


def finish_dataset(out_dir: Path, *, recorded: Path, sensor: str) -> DatasetMeta:
    """Compress the recorded NDJSON, derive the entity labels, write the metadata."""
    truth = load_ground_truth(out_dir / LABELS_FILE)
    events_path = out_dir / EVENTS_FILE
    with recorded.open("rb") as source, gzip.open(events_path, "wb", compresslevel=6) as target:
        shutil.copyfileobj(source, target, 1 << 20)
    recorded.unlink()
    recorded.with_name(recorded.name + ".position").unlink(missing_ok=True)
    report = IngestReport(source=str(events_path))
    events = list(read_ndjson(events_path, report=report, host=HostContext()))
    labels = label_events(events, truth)
    entity_labels = EntityLabels(
        processes=sorted(labels.processes),
        events=sorted(labels.events),
        files=sorted(labels.files),
        endpoints=sorted(labels.endpoints),
    )
    (out_dir / ENTITY_LABELS_FILE).write_bytes(
        msgspec.json.format(msgspec.json.encode(entity_labels), indent=2) + b"\n"
    )
    meta = DatasetMeta(
        name=truth.name,
        kind=truth.kind,
        seed=truth.seed,
        sensor=sensor,
        host_id=events[0].host.id if events else "",
        events=report.events,
        rejected=report.rejected,
        started_ns=truth.started_ns,
        ended_ns=truth.ended_ns,
        created_ns=time.time_ns(),
    )
    (out_dir / META_FILE).write_bytes(
        msgspec.json.format(msgspec.json.encode(meta), indent=2) + b"\n"
    )
    return meta


@dataclass(frozen=True, slots=True)
class UnlabelledDataset:
    """A dataset opened for its events only: training and calibration never see labels."""

    path: Path
    meta: DatasetMeta

    def events(self, report: IngestReport | None = None) -> Iterator[Event]:
        report = report or IngestReport(source=str(self.path / EVENTS_FILE))
        return read_ndjson(self.path / EVENTS_FILE, report=report, host=HostContext())


def load_unlabelled(path: Path) -> UnlabelledDataset:
    """Open a dataset reading only its metadata and (lazily) its events, never its labels."""
    if not path.is_dir():
        raise ConfigError(f"not a dataset directory: {path}")
    for name in (META_FILE, EVENTS_FILE):
        if not (path / name).exists():
            raise ConfigError(f"dataset is missing {name}", location=str(path))
    return UnlabelledDataset(path=path, meta=_read_meta(path))


def _read_meta(path: Path) -> DatasetMeta:
    try:
        meta = msgspec.json.decode((path / META_FILE).read_bytes(), type=DatasetMeta)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(str(exc), location=str(path / META_FILE)) from None
    if meta.format_version != DATASET_FORMAT_VERSION:
        raise ParseError(
            f"dataset format {meta.format_version} is not supported", location=str(path / META_FILE)
        )
    return meta


def load_dataset(path: Path) -> Dataset:
    """Open a dataset directory; a missing or malformed part is a clear error naming it."""
    if not path.is_dir():
        raise ConfigError(f"not a dataset directory: {path}")
    for name in (META_FILE, LABELS_FILE, ENTITY_LABELS_FILE, EVENTS_FILE):
        if not (path / name).exists():
            raise ConfigError(f"dataset is missing {name}", location=str(path))
    meta = _read_meta(path)
    try:
        labels = msgspec.json.decode((path / ENTITY_LABELS_FILE).read_bytes(), type=EntityLabels)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(str(exc), location=str(path / ENTITY_LABELS_FILE)) from None
    return Dataset(path=path, meta=meta, truth=load_ground_truth(path / LABELS_FILE), labels=labels)
