import numpy as np
import pytest

from provarmor.detection.anomaly.profile import Profile
from provarmor.detection.anomaly.scorer import Scorer
from provarmor.detection.anomaly.train import (
    TrainingData,
    behaviour_scores,
    process_scores,
    split_by_time,
    surprise_of_new,
    train_model,
)
from provarmor.model.errors import ConfigError


def test_threshold_is_the_quantile_of_validation_behaviours_only(small_model, benign_split):
    _, validation = benign_split
    behaviours = behaviour_scores(Scorer(small_model), validation)
    assert small_model.threshold == pytest.approx(np.quantile(behaviours, 0.995))
    assert len(behaviours) == small_model.metadata["validation_behaviours"]
    assert len(behaviours) < len(validation)  # repeated benign behaviours count once
    assert small_model.metadata["validation_processes"] == len(validation)
    assert small_model.metadata["validation_exceeding"] <= 1


def test_training_processes_score_zero(small_model, benign_split):
    training, _ = benign_split
    scores = process_scores(Scorer(small_model), [[history[-1]] for history in training])
    assert scores.max() == 0.0


def test_new_tokens_cost_more_for_stable_executables():
    # 100 runs and no one-off token (always the same) vs 100 runs with 60 one-offs (a shell).
    assert surprise_of_new(0, 100) == pytest.approx(np.log(102.0))
    assert surprise_of_new(0, 100) > 3 * surprise_of_new(60, 100)


def test_split_by_time_holds_out_the_latest_processes(benign_split):
    training, validation = benign_split
    assert max(h[0].first_timestamp for h in training) <= min(
        h[0].first_timestamp for h in validation
    )
    assert len(validation) == round((len(training) + len(validation)) * 0.2)
    assert split_by_time([], 0.2) == ([], [])


def test_training_refuses_too_little_data(small_settings):
    few = [[Profile(entity_id=str(i), host_id="h")] for i in range(5)]
    with pytest.raises(ConfigError, match="too few training"):
        train_model(TrainingData(training=few, validation=few), small_settings)
