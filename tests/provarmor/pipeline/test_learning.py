"""A host's learning mode over its archive, on the real benign lab recording: versions are
archived when trained, the state survives a restart (a new instance on the same directory),
and what a crash lost or a damaged checkpoint cost is counted."""

import json
from pathlib import Path

import pytest

from provarmor.detection.anomaly.learning import Phase
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.pipeline.learning import STATUS_FILE, HostLearning
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

BENIGN = Path(__file__).parents[2] / "data" / "lab" / "benign-seed2" / "events.ndjson.gz"
SETTINGS = LearningSettings(window_seconds=30, relearn_interval_seconds=20, checkpoint_seconds=0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def events():
    report = IngestReport(source=str(BENIGN))
    return list(read_ndjson(BENIGN, report=report, host=HostContext()))


def _feed(learning, events, size=500):
    for start in range(0, len(events), size):
        for event in events[start : start + size]:
            learning.detector.on_event(event)
        learning.after_batch()


def test_trained_versions_are_archived_with_their_window(tmp_path, events):
    learning = HostLearning(tmp_path, settings=SETTINGS)
    _feed(learning, events)
    assert learning.archive.versions() == [1, 2]
    version, model = learning.archive.latest()
    assert version == 2
    assert model.metadata["model_version"] == 2
    assert model.metadata["learned_window"][0] >= events[0].timestamp
    assert learning.current["model_version"] == 2
    assert learning.current["versions"] == [1, 2]
    learning.close()
    restarted = HostLearning(tmp_path, settings=SETTINGS)
    assert restarted.status().phase is Phase.ENABLED
    assert restarted.detector.active is not None
    assert restarted.detector.active.model.known == model.known


def test_restart_continues_learning_from_the_checkpoint(tmp_path, events):
    # Stopped 20 s into the first 30 s window, restarted, fed the rest.
    half = next(i for i, e in enumerate(events) if e.timestamp >= events[0].timestamp + 20e9)
    first = HostLearning(tmp_path, settings=SETTINGS)
    _feed(first, events[:half])
    before = first.status()
    assert before.phase is Phase.LEARNING
    assert before.events == half
    first.close()
    second = HostLearning(tmp_path, settings=SETTINGS)
    assert second.restored
    assert second.status() == before
    _feed(second, events[half:])
    uninterrupted = HostLearning(tmp_path / "other", settings=SETTINGS)
    _feed(uninterrupted, events)
    assert second.archive.versions() == uninterrupted.archive.versions()
    assert second.archive.latest()[1].known == uninterrupted.archive.latest()[1].known


def test_events_acknowledged_after_the_last_checkpoint_are_counted_lost(tmp_path, events):
    clock = Clock()
    settings = LearningSettings(window_seconds=60, checkpoint_seconds=30)
    first = HostLearning(tmp_path, settings=settings, clock=clock)
    first.note_recorded(0)
    _feed(first, events[:1000])
    clock.now = 31.0
    _feed(first, events[1000:1500])  # checkpoint: 1,500 events seen
    _feed(first, events[1500:2000])  # not checkpointed: the manager "crashes" here
    second = HostLearning(tmp_path, settings=settings, clock=clock)
    second.note_recorded(2000)
    assert second.status().dropped == {"unlearned_events": 500}


def test_a_crash_before_the_first_regular_checkpoint_is_counted(tmp_path, events):
    settings = LearningSettings(window_seconds=60, checkpoint_seconds=3600)
    first = HostLearning(tmp_path, settings=settings)
    first.note_recorded(300)  # events stored before learning began are not "lost"
    _feed(first, events[:1000])  # never checkpointed: the manager "crashes"
    second = HostLearning(tmp_path, settings=settings)
    second.note_recorded(1300)
    assert second.restored
    assert second.status().dropped == {"unlearned_events": 1000}


def test_an_unreadable_checkpoint_is_set_aside_and_learning_starts_again(tmp_path, events):
    learning = HostLearning(tmp_path, settings=SETTINGS)
    _feed(learning, events[:3000])
    learning.close()
    (tmp_path / "learning.json.gz").write_bytes(b"\x1f\x8b damaged")
    again = HostLearning(tmp_path, settings=SETTINGS)
    assert not again.restored
    assert again.status().dropped == {"unreadable_checkpoints": 1}
    assert again.status().events == 0
    assert (tmp_path / "learning.json.gz.unreadable").exists()


def test_status_file_is_written_with_each_checkpoint(tmp_path, events):
    learning = HostLearning(tmp_path, settings=SETTINGS)
    _feed(learning, events[:2000])
    written = json.loads((tmp_path / STATUS_FILE).read_text())
    assert written["phase"] == "learning"
    assert written["events"] == 2000
    assert 0 < written["time_left_seconds"] <= 30
