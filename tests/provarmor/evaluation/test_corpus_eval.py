import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from provarmor.detection.anomaly.profile import build_histories
from provarmor.detection.anomaly.settings import TrainingSettings
from provarmor.detection.anomaly.train import TrainingData, train_model
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.evaluation.corpus import ROLES
from provarmor.evaluation.corpus_eval import _same_model, evaluate_corpus, load_corpus
from provarmor.model.errors import ConfigError

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "corpus"
"""Three tiny real chunks of the recipe (learning, calibration, test): see its README."""


@pytest.fixture(scope="module")
def report():
    return evaluate_corpus(CORPUS, rules=[bundled_rules()], seeds=[1, 2])


def test_rules_run_on_every_chunk_and_the_model_on_test_chunks_only(report):
    by_role = {chunk.role: chunk for chunk in report.chunks}
    assert set(by_role) == {"learning", "calibration", "test"}
    assert set(by_role["learning"].incidents) == {"rules"}
    assert set(by_role["calibration"].incidents) == {"rules"}
    test = by_role["test"]
    assert len(test.incidents["rules"]) == 1
    assert len(test.incidents["model"]) == len(test.incidents["both"]) == 2  # one per seed
    assert report.test_hours == pytest.approx(test.hours)
    # every incident counted is listed with its title and root cause
    for configuration in ("rules", "model", "both"):
        listed = [i for i in report.incidents if i.configuration == configuration]
        counted = sum(sum(c.incidents.get(configuration, [])) for c in report.chunks)
        assert len(listed) == counted
        assert all(i.title and i.root_cause and i.severity for i in listed)
    rate = report.per_host_hour("rules")
    assert rate == (pytest.approx(test.incidents["rules"][0] / test.hours), 0.0)
    everywhere = sum(c.incidents["rules"][0] for c in report.chunks)
    assert report.hours(ROLES) == pytest.approx(sum(c.hours for c in report.chunks))
    assert report.per_host_hour("rules", ROLES) == (
        pytest.approx(everywhere / report.hours(ROLES)),
        0.0,
    )


def test_the_model_learns_from_learning_chunks_and_calibrates_on_calibration_ones(report):
    chunks = {chunk.role: chunk for chunk in load_corpus(CORPUS)}
    learning = build_histories(chunks["learning"].dataset.events())
    calibration = build_histories(chunks["calibration"].dataset.events())
    assert report.learning_processes == len(learning)
    assert report.calibration_processes == len(calibration)
    assert len(report.thresholds) == 2
    assert report.thresholds[0] > 0


def test_a_seed_with_the_same_model_reports_the_same_incidents(report):
    def incidents(seed):
        return sorted(
            (i.chunk, i.title, i.root_cause, i.score)
            for i in report.incidents
            if i.seed == seed and i.configuration == "both"
        )

    assert report.thresholds[0] == report.thresholds[1]  # the counting model is deterministic
    assert incidents(1) == incidents(2)
    chunks = {chunk.role: chunk for chunk in load_corpus(CORPUS)}
    model = train_model(
        TrainingData(
            training=build_histories(chunks["learning"].dataset.events()),
            validation=build_histories(chunks["calibration"].dataset.events()),
        ),
        TrainingSettings(seed=3),
    )
    assert _same_model(model, replace(model, metadata={"seed": 4}))
    assert not _same_model(model, replace(model, threshold=model.threshold * 2))


def test_unknown_configurations_and_empty_corpora_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown configuration"):
        evaluate_corpus(CORPUS, rules=[], seeds=[1], configurations=["rules", "magic"])
    empty = tmp_path / "corpus"
    empty.mkdir()
    (empty / "corpus.json").write_text('{"format_version": 1, "kind": "real-world"}')
    with pytest.raises(ConfigError, match="lists no chunks"):
        evaluate_corpus(empty, rules=[], seeds=[1])
    only_test = tmp_path / "only-test"
    only_test.mkdir()
    shutil.copytree(CORPUS / "test", only_test / "test")
    (only_test / "corpus.json").write_text(
        '{"format_version": 1, "kind": "real-world", "chunks": [{"path": "test", "role": "test"}]}'
    )
    with pytest.raises(
        ConfigError, match="needs learning and calibration chunks; this corpus has test"
    ):
        evaluate_corpus(only_test, rules=[], seeds=[1])
    rules_only = evaluate_corpus(only_test, rules=[], seeds=[1], configurations=["rules"])
    assert [c.chunk for c in rules_only.chunks] == ["test"]
