"""Learning mode on real recordings: the benign lab run (78 s, eBPF) as the host's baseline,
then the nodlink attack recorded on the same host ten minutes later. Windows are seconds
long, measured in event time, so the recordings learn as the live host did."""

import gzip
from pathlib import Path

import msgspec
import numpy as np
import pytest

from provarmor.detection.anomaly.learning import (
    CHECKPOINT_VERSION,
    Learner,
    LearningDetector,
    Phase,
    dump_checkpoint,
    parse_checkpoint,
    restore_learner,
)
from provarmor.detection.anomaly.scorer import Scorer
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.detection.anomaly.train import behaviour_scores
from provarmor.detection.engine import detect
from provarmor.model.errors import ConfigError

SECOND = 1_000_000_000
WHOLE_RUN = LearningSettings(window_seconds=75, relearn_interval_seconds=0)
"""The benign run is the learning window (the last 15 s held out)."""
FIXTURE = Path(__file__).parents[3] / "data" / "anomaly" / "learning-checkpoint-v1.json.gz"


@pytest.fixture(scope="module")
def learned(benign_events):
    detector = LearningDetector(Learner(WHOLE_RUN))
    during = []
    for event in benign_events:
        learning = detector.learner.phase is Phase.LEARNING
        found = detector.on_event(event)
        if learning:
            during.extend(found)
    after = list(detector.flush())
    return detector, during, after


def test_no_anomaly_alerts_while_learning(learned):
    detector, during, _ = learned
    assert during == []
    assert detector.learner.version == 1


def test_window_ends_in_event_time_and_enables_a_calibrated_model(learned, benign_events):
    detector, _, _ = learned
    learner = detector.learner
    status = learner.status()
    start = benign_events[0].timestamp
    assert status.phase is Phase.ENABLED
    assert status.model_version == 1
    assert status.learned_window[0] == start
    assert status.learned_window[1] == start + 75 * SECOND
    assert status.trained_at_ns >= status.learned_window[1]  # at the first event past it
    assert status.threshold_source.startswith("learned on this host: quantile 0.995")
    assert status.window_end_ns == 0  # relearning off: nothing more is gathered
    model = learner.model
    window = model.metadata["datasets"][0]
    assert window["validation_from_ns"] == start + 60 * SECOND
    assert model.metadata["validation_processes"] > 10
    assert model.metadata["training_processes"] > 400


def test_threshold_comes_from_the_held_out_tail_only(learned, benign_events):
    detector, _, _ = learned
    model = detector.learner.model
    cut = model.metadata["datasets"][0]["validation_from_ns"]
    # Rebuild the held-out tail offline and check the threshold is its quantile.
    from provarmor.detection.anomaly.profile import build_histories

    window = [e for e in benign_events if e.timestamp < model.metadata["learned_window"][1]]
    tail = [h for h in build_histories(window) if h[0].first_timestamp >= cut]
    assert len(tail) == model.metadata["validation_processes"]
    scores = behaviour_scores(Scorer(model), tail)
    assert model.threshold == pytest.approx(np.quantile(scores, 0.995))


def test_after_learning_the_attack_raises_anomaly_signals(learned, attack_events, attackers):
    detector, _, after = learned
    assert after == []  # the 3 benign seconds after the window: quiet
    alerts = list(detect([detector], attack_events))
    flagged = {alert.process_entity_ids[0] for alert in alerts}
    # Measured: one alert, on the attacker's process (score / threshold >= 1).
    assert flagged
    assert flagged <= attackers
    assert all(alert.detector == "anomaly" and alert.score >= 1.0 for alert in alerts)


def test_relearning_makes_new_versions_from_later_windows(benign_events):
    settings = LearningSettings(window_seconds=30, relearn_interval_seconds=20)
    learner = Learner(settings)
    list(detect([LearningDetector(learner)], benign_events))
    models = learner.take_trained()
    assert [m.metadata["model_version"] for m in models] == [1, 2]
    first, second = (m.metadata["learned_window"] for m in models)
    assert second[0] >= first[1]  # the next window starts where the first ended
    assert models[0].known != models[1].known
    assert learner.take_trained() == []
    status = learner.status()
    assert status.model_version == 2
    assert status.window_end_ns > status.clock_ns  # the third window is being gathered


def test_alerted_processes_stay_out_of_the_next_version(benign_events):
    settings = LearningSettings(window_seconds=30, relearn_interval_seconds=20)
    learner = Learner(settings)
    detector = LearningDetector(learner)
    alerts = list(detect([detector], benign_events))
    assert alerts  # the 30 s model finds the later workloads new
    second = learner.take_trained()[1]
    # Measured: 18 processes alerted on while version 2's window was gathered were left out.
    assert second.metadata["datasets"][0]["dropped"]["excluded_alerted"] > 0


def test_a_window_too_small_to_train_is_extended_with_the_reason(benign_events):
    learner = Learner(LearningSettings(window_seconds=0.01, relearn_interval_seconds=0))
    detector = LearningDetector(learner)
    start = benign_events[0].timestamp
    early = [e for e in benign_events if e.timestamp < start + SECOND // 10]
    list(detect([detector], early))
    status = learner.status()
    assert status.phase is Phase.LEARNING
    assert "needed" in status.waiting
    assert status.window_end_ns > start + SECOND // 100  # extended by whole windows
    assert status.time_left_seconds <= 0.01
    list(detect([detector], [e for e in benign_events if e.timestamp >= start + SECOND // 10]))
    assert learner.status().phase is Phase.ENABLED


def test_replaying_the_recording_learns_the_same_model(benign_events):
    models = []
    for _ in range(2):
        learner = Learner(WHOLE_RUN)
        list(detect([LearningDetector(learner)], benign_events))
        models.append(learner.model)
    assert models[0].known == models[1].known
    assert models[0].threshold == models[1].threshold


def test_checkpoint_restores_mid_window_and_learns_the_same_model(benign_events):
    whole = Learner(WHOLE_RUN)
    list(detect([LearningDetector(whole)], benign_events))
    half = len(benign_events) // 2
    first = Learner(WHOLE_RUN)
    for event in benign_events[:half]:
        first.observe(event)
    data = dump_checkpoint(first)
    resumed = restore_learner(parse_checkpoint(data, location="x"), settings=WHOLE_RUN, model=None)
    assert resumed.status() == first.status()
    for event in benign_events[half:]:
        resumed.observe(event)
    assert resumed.model is not None
    assert resumed.model.known == whole.model.known
    assert resumed.model.threshold == whole.model.threshold


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not gzip", "damaged"),
        (gzip.compress(b'{"format_version": 99}'), "format 99 is not supported"),
        (gzip.compress(b'{"format_version": 1, "version": "x"}'), "invalid"),
        (gzip.compress(b"[1, 2"), "invalid"),
    ],
    # the gzip header holds the time of compression: ids of their own keep the test's id
    # the same in every process (pytest-xdist's workers must collect the same tests)
    ids=["not-gzip", "format-99", "unknown-field", "cut-json"],
)
def test_bad_checkpoint_is_a_config_error_naming_it(data, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_checkpoint(data, location="models/h1/learning.json.gz")
    assert caught.value.location == "models/h1/learning.json.gz"


def test_checkpoint_format_1_fixture_still_reads():
    checkpoint = parse_checkpoint(FIXTURE.read_bytes(), location=str(FIXTURE))
    assert checkpoint.format_version == CHECKPOINT_VERSION == 1
    learner = restore_learner(checkpoint, settings=WHOLE_RUN, model=None)
    status = learner.status()
    assert status.phase is Phase.LEARNING
    assert status.events > 1000
    assert status.processes > 50
    assert msgspec.json.decode(gzip.decompress(FIXTURE.read_bytes()))["format_version"] == 1


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"window_seconds": 0}, "learning.window_seconds"),
        ({"validation_fraction": 1.0}, "learning.validation_fraction"),
        ({"relearn_interval_seconds": -1}, "learning.relearn_interval_seconds"),
    ],
)
def test_settings_that_cannot_learn_are_refused_naming_the_key(change, key):
    with pytest.raises(ConfigError) as caught:
        LearningSettings(**change)
    assert caught.value.location == key
