"""The online baseline on the real benign lab recording (eBPF, 78 s of mixed admin and
developer work)."""

import msgspec
import pytest

from provarmor.detection.anomaly.baseline import Baseline, BaselineRecord
from provarmor.detection.anomaly.profile import build_histories
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.detection.anomaly.train import count_tokens

SECOND = 1_000_000_000


def _window(events, seconds):
    start = events[0].timestamp
    return start, start + seconds * SECOND


def _fed(events, settings, seconds=60, upto=None):
    start, end = _window(events, seconds)
    baseline = Baseline(start=start, end=end, settings=settings)
    for event in events[:upto]:
        if event.timestamp >= end:
            break
        baseline.observe(event)
    return baseline


def test_baseline_counts_what_offline_training_counts_on_the_same_time_split(benign_events):
    settings = LearningSettings()
    baseline = _fed(benign_events, settings)
    data = baseline.close()
    # Offline: the same window's processes, split at the cut by first activity.
    inside = [e for e in benign_events if e.timestamp < baseline.end]
    histories = build_histories(inside)
    training = [h[-1] for h in histories if h[0].first_timestamp < baseline.cut]
    validation = [h for h in histories if h[0].first_timestamp >= baseline.cut]
    expected = count_tokens(training)
    assert data.counts.processes == expected.processes == len(training)
    assert data.counts.known == expected.known
    assert data.counts.executables == expected.executables
    assert data.counts.document_frequency == expected.document_frequency
    assert len(data.validation) == len(validation) > 10
    assert sorted(h[-1].entity_id for h in data.validation) == sorted(
        h[-1].entity_id for h in validation
    )
    assert baseline.processes == len(histories)
    assert baseline.events == len(inside)
    assert not baseline.dropped


def test_every_process_is_either_counted_or_held_out(benign_events):
    baseline = _fed(benign_events, LearningSettings())
    data = baseline.close()
    assert data.counts.processes + len(data.validation) == baseline.processes
    for history in data.validation:
        assert history[0].first_timestamp >= baseline.cut
        # histories grow as online scoring sees them: after the 1st, 2nd, 4th ... change
        assert [p.changes for p in history] == sorted(p.changes for p in history)


def test_bounds_count_what_they_leave_out(benign_events):
    tight = LearningSettings(
        max_validation_processes=5, max_tokens=500, max_open_processes=50, max_exited=10
    )
    baseline = _fed(benign_events, tight)
    data = baseline.close()
    assert len(data.validation) == 5
    assert baseline.dropped["validation_processes"] > 0
    assert baseline.dropped["tokens"] > 0
    assert baseline.dropped["counted_early"] > 0
    assert len(data.counts.known) <= 500


def test_excluded_process_and_its_descendants_are_left_out(benign_events):
    settings = LearningSettings()
    full = _fed(benign_events, settings)
    shells = [p for p in full._table.profiles.values() if p.exe == "/usr/bin/bash"]
    assert shells
    parent = shells[0].entity_id
    children = {
        e.process.entity_id
        for e in benign_events
        if e.process.parent is not None and e.process.parent.entity_id == parent
    }
    start, end = _window(benign_events, 60)
    baseline = Baseline(start=start, end=end, settings=settings)
    baseline.exclude(parent)
    for event in benign_events:
        if event.timestamp >= end:
            break
        baseline.observe(event)
    assert parent not in baseline._table.profiles
    assert not children & set(baseline._table.profiles)
    assert baseline.processes < full.processes
    assert baseline.close().counts.processes < full.close().counts.processes


def test_record_round_trip_continues_as_if_uninterrupted(benign_events):
    settings = LearningSettings()
    whole = _fed(benign_events, settings).close()
    half = len(benign_events) // 2
    first = _fed(benign_events, settings, upto=half)
    text = msgspec.json.encode(first.to_record())
    resumed = Baseline.from_record(
        msgspec.json.decode(text, type=BaselineRecord), settings=settings
    )
    for event in benign_events[half:]:
        if event.timestamp >= resumed.end:
            break
        resumed.observe(event)
    data = resumed.close()
    assert data.counts.known == whole.counts.known
    assert data.counts.processes == whole.counts.processes
    assert [h[-1].tokens for h in data.validation] == [h[-1].tokens for h in whole.validation]


@pytest.mark.parametrize(("seconds", "reason"), [(0.05, "training processes")])
def test_shortfall_names_what_is_missing(benign_events, seconds, reason):
    baseline = _fed(benign_events, LearningSettings(), seconds=seconds)
    assert reason in baseline.shortfall()
    assert _fed(benign_events, LearningSettings()).shortfall() == ""
