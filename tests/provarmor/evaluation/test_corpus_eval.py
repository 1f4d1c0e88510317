import gzip
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from provarmor.detection.anomaly.settings import LearningSettings, TrainingSettings
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.evaluation.corpus import EVALUATED_ROLES, MANIFEST_FILE
from provarmor.evaluation.corpus_eval import _same_model, evaluate_corpus, learn_model, load_corpus
from provarmor.evaluation.dataset import load_dataset
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
    assert report.hours(EVALUATED_ROLES) == pytest.approx(sum(c.hours for c in report.chunks))
    assert report.per_host_hour("rules", EVALUATED_ROLES) == (
        pytest.approx(everywhere / report.hours(EVALUATED_ROLES)),
        0.0,
    )


def test_the_model_is_the_one_learning_mode_enables_after_the_learning_window(report):
    chunks = {chunk.role: chunk for chunk in load_corpus(CORPUS)}
    learning, calibration, test = (
        chunks[r].dataset.meta for r in ("learning", "calibration", "test")
    )
    # one window from the learning chunk's first event to the calibration chunk's end
    span = calibration.ended_ns - learning.started_ns
    assert report.learning_window_seconds == pytest.approx(span / 1e9, abs=0.01)
    assert report.learning_window_seconds * 1e9 < test.started_ns - learning.started_ns
    # trained on the window's processes, calibrated on its held-out tail (both chunks feed it)
    assert report.learning_processes > 0
    assert report.calibration_processes >= 10
    assert len(report.thresholds) == 2
    assert report.thresholds[0] > 0


def test_nothing_of_a_test_chunk_but_its_first_event_reaches_the_learner(tmp_path):
    chunks = {chunk.role: chunk for chunk in load_corpus(CORPUS)}
    window = [chunks["learning"].dataset, chunks["calibration"].dataset]
    settings, training = LearningSettings(), TrainingSettings(seed=1)
    model = learn_model(window, chunks["test"].dataset, settings=settings, training=training)
    # the same window closed by a test chunk holding only that first event
    first = next(iter(chunks["test"].dataset.events()))
    short = _one_event_dataset(tmp_path, chunks["test"], first)
    again = learn_model(window, short, settings=settings, training=training)
    assert _same_model(model, again)
    assert model.metadata["model_version"] == 1
    assert model.metadata["threshold_method"]


def test_a_window_learning_mode_cannot_train_on_is_refused_with_its_reason():
    chunks = {chunk.role: chunk for chunk in load_corpus(CORPUS)}
    window = [chunks["learning"].dataset, chunks["calibration"].dataset]
    held_out_nothing = LearningSettings(validation_fraction=0.000001)
    with pytest.raises(ConfigError, match="enabled no model on learning, calibration before test"):
        learn_model(
            window, chunks["test"].dataset, settings=held_out_nothing, training=TrainingSettings()
        )


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
    model = learn_model(
        [chunks["learning"].dataset, chunks["calibration"].dataset],
        chunks["test"].dataset,
        settings=LearningSettings(),
        training=TrainingSettings(seed=3),
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
        ConfigError,
        match=r"needs learning, calibration and test \(or development\) chunks; this corpus has",
    ):
        evaluate_corpus(only_test, rules=[], seeds=[1])
    rules_only = evaluate_corpus(only_test, rules=[], seeds=[1], configurations=["rules"])
    assert [c.chunk for c in rules_only.chunks] == ["test"]


def _with_roles(tmp_path, roles):
    """A copy of the fixture corpus with its chunks (by name, the fixture's own and copies of
    its test chunk) in ``roles``."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    for name in roles:
        if not (corpus / name).exists():
            shutil.copytree(CORPUS / "test", corpus / name)
    chunks = [{"path": name, "role": role} for name, role in roles.items()]
    document = {"format_version": 1, "kind": "real-world", "chunks": chunks}
    (corpus / MANIFEST_FILE).write_text(json.dumps(document))
    return corpus


def test_development_chunks_are_scored_apart_and_retired_ones_not_run(tmp_path, report):
    roles = {"learning": "learning", "calibration": "calibration", "test": "test"}
    corpus = _with_roles(tmp_path, {**roles, "dev": "development", "old": "retired"})
    both = evaluate_corpus(corpus, rules=[bundled_rules()], seeds=[1])
    by_name = {chunk.chunk: chunk for chunk in both.chunks}
    assert by_name["old"].role == "retired"
    assert by_name["old"].incidents == {}  # listed, never run
    assert not [i for i in both.incidents if i.chunk == "old"]
    dev, test = by_name["dev"], by_name["test"]
    assert set(dev.incidents) == {"rules", "model", "both"}  # scored like a test chunk ...
    assert dev.incidents == test.incidents  # (the same events) ...
    assert both.totals("rules") == test.incidents["rules"]  # ... but not in the test figure
    assert both.totals("rules", ("development",)) == dev.incidents["rules"]
    assert both.hours() == pytest.approx(test.hours)
    assert both.hours(EVALUATED_ROLES) == pytest.approx(report.hours(EVALUATED_ROLES) + dev.hours)
    assert both.thresholds == report.thresholds[:1]  # the same window, the same model


def test_a_scored_chunk_from_inside_the_learning_window_is_refused(tmp_path):
    corpus = _with_roles(
        tmp_path,
        {"learning": "learning", "calibration": "calibration", "early": "development"},
    )
    meta = json.loads((corpus / "early" / "dataset.json").read_text())
    window = json.loads((corpus / "learning" / "dataset.json").read_text())
    meta["started_ns"] = window["started_ns"]
    (corpus / "early" / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="early started before the learning window ended"):
        evaluate_corpus(corpus, rules=[], seeds=[1], configurations=["model"])


def _one_event_dataset(tmp_path, chunk, event):
    """A copy of ``chunk`` whose events file holds only its first line (``event``)."""
    copy = tmp_path / chunk.name
    shutil.copytree(CORPUS / chunk.name, copy)
    with gzip.open(copy / "events.ndjson.gz", "rt") as lines:
        first = next(lines)
    with gzip.open(copy / "events.ndjson.gz", "wt") as out:
        out.write(first)
    dataset = load_dataset(copy)
    assert list(dataset.events()) == [event]
    return dataset
