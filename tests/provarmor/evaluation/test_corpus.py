import gzip
import json
import shutil
from pathlib import Path

import msgspec
import pytest

from provarmor.evaluation.corpus import (
    MANIFEST_FILE,
    LineageFilter,
    RecordingInfo,
    add_chunk,
    read_manifest,
    read_recording,
    write_chunk,
    write_recording,
)
from provarmor.evaluation.dataset import load_dataset
from provarmor.model.actions import Action
from provarmor.model.errors import ConfigError, ParseError
from provarmor.model.event import Event, Process
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson
from provarmor.testing.factories import make_event

DATA = Path(__file__).resolve().parents[2] / "data" / "corpus"
"""A real recording (tests/data/corpus/README.md): three tiny chunks of the recipe, and a
slice of the whole machine's events around the first one's root."""


def _started(event: Event, start: int, entity: str | None = None) -> Event:
    process: Process = msgspec.structs.replace(
        event.process, start=start, entity_id=entity or event.process.entity_id
    )
    return msgspec.structs.replace(event, process=process)


def test_the_filter_keeps_the_tree_and_nothing_else():
    root = _started(make_event(Action.EXEC, pid=10, ppid=1), 5_000_000_000)
    events = [
        root,
        make_event(Action.FORK, pid=11, ppid=10),  # child of the root
        make_event(Action.OPEN, pid=11, path="/etc/hosts"),  # its later events carry no parent
        make_event(Action.FORK, pid=12, ppid=11),  # grandchild (a daemon that forks away)
        make_event(Action.FORK, pid=20, ppid=1),  # someone else's process
        make_event(Action.FORK, pid=21, ppid=20),  # ... and its child
        make_event(Action.OPEN, pid=21, path="/etc/shadow"),
        # the root's pid reused later by an unrelated process
        _started(make_event(Action.EXEC, pid=10, ppid=1), 9_000_000_000, "reused"),
        Event(
            timestamp=2,
            event=make_event(Action.GAP).event,
            host=root.host,
            process=Process(entity_id="", pid=0),
        ),
    ]
    lineage = LineageFilter(root_pid=10, root_start_ns=5_100_000_000)
    kept = list(lineage.filter(events))
    assert [e.process.pid for e in kept] == [10, 11, 11, 12, 0]
    assert lineage.processes == {events[0].process.entity_id, "test-host-p11", "test-host-p12"}
    assert (lineage.seen, lineage.kept, lineage.gaps) == (9, 5, 1)
    assert lineage.kept_fraction == pytest.approx(5 / 9)


def test_the_root_must_match_its_start_time():
    late = _started(make_event(Action.EXEC, pid=10, ppid=1), 5_000_000_000)
    lineage = LineageFilter(root_pid=10, root_start_ns=1_000_000_000)
    assert list(lineage.filter([late])) == []


def _ancestry(events: list[Event]) -> dict[str, str]:
    parents: dict[str, str] = {}
    for event in events:
        parent = event.process.parent
        if parent is not None:
            parents.setdefault(event.process.entity_id, parent.entity_id)
    return parents


def test_on_a_real_machine_slice_it_keeps_exactly_the_recipes_descendants():
    recording = read_recording(DATA / "corpus" / "learning")
    events = list(
        read_ndjson(
            DATA / "machine-slice.ndjson.gz",
            report=IngestReport(source="slice"),
            host=HostContext(),
        )
    )
    lineage = LineageFilter(root_pid=recording.root_pid, root_start_ns=recording.root_start_ns)
    kept = list(lineage.filter(events))
    # checked another way: walk every process up its recorded parents to the root
    (root,) = {
        e.process.entity_id
        for e in events
        if e.process.pid == recording.root_pid and e.event.action == Action.FORK
    }
    parents = _ancestry(events)

    def descends(entity: str) -> bool:
        for _ in range(100):
            if entity == root:
                return True
            if entity not in parents:
                return False
            entity = parents[entity]
        return False

    assert kept
    assert all(descends(e.process.entity_id) for e in kept)
    dropped = [e for e in events if e.process.entity_id not in lineage.processes]
    assert dropped, "the slice holds other people's activity"
    assert not any(descends(e.process.entity_id) for e in dropped)
    programs = {e.process.executable.rsplit("/", 1)[-1] for e in kept}
    assert {"bash", "make", "cc", "ar"} <= programs


def _recording(**changes: object) -> RecordingInfo:
    base = read_recording(DATA / "corpus" / "test")
    return msgspec.structs.replace(base, **changes)


def test_a_written_chunk_opens_as_a_benign_dataset_and_joins_the_manifest_once(tmp_path):
    source = load_dataset(DATA / "corpus" / "test")
    recording = _recording()
    chunk = tmp_path / "corpus" / "chunk-07"
    meta = write_chunk(
        chunk,
        source.events(),
        name="chunk-07",
        seed=7,
        started_ns=recording.started_ns,
        ended_ns=recording.ended_ns,
        completed=True,
        sensor="ebpf",
    )
    write_recording(chunk, recording)
    dataset = load_dataset(chunk)
    assert dataset.meta == meta
    assert (meta.kind, meta.events, dataset.truth.kind) == ("benign", source.meta.events, "benign")
    assert dataset.labels.processes == []
    assert read_recording(chunk) == recording
    add_chunk(tmp_path / "corpus", chunk, role="learning")
    manifest = add_chunk(tmp_path / "corpus", chunk, role="test")
    assert [(c.path, c.role) for c in manifest.chunks] == [("chunk-07", "test")]
    assert read_manifest(tmp_path / "corpus") == manifest


def test_manifest_errors_name_the_file_and_the_chunk(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(DATA / "corpus", corpus)
    path = corpus / MANIFEST_FILE
    document = json.loads(path.read_text())
    document["chunks"][1]["role"] = "training"
    path.write_text(json.dumps(document))
    with pytest.raises(ParseError, match=r"chunk 2 \(learning\): role 'training'") as error:
        read_manifest(corpus)
    assert error.value.location == str(path)
    path.write_text("{not json")
    with pytest.raises(ParseError) as error:
        read_manifest(corpus)
    assert error.value.location == str(path)
    document["chunks"][1]["role"] = "learning"
    document["format_version"] = 9
    path.write_text(json.dumps(document))
    with pytest.raises(ParseError, match="format 9"):
        read_manifest(corpus)
    with pytest.raises(ConfigError, match="role 'training'"):
        add_chunk(corpus, corpus / "test", role="training")


def test_fixture_events_are_gzip_ndjson():
    with gzip.open(DATA / "corpus" / "test" / "events.ndjson.gz") as lines:
        first = json.loads(lines.readline())
    assert first["process"]["entity_id"]
