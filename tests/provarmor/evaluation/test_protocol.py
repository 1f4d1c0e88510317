import shutil

import pytest

import provarmor.evaluation.dataset as dataset_module
from provarmor.detection.anomaly.settings import TrainingSettings
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.evaluation.protocol import METRICS, ProtocolPlan, run_protocol
from provarmor.model.errors import ConfigError
from provarmor.testing.datasets import benign_slice

SMALL = TrainingSettings()


@pytest.fixture
def benign_split(data_dir, tmp_path):
    source = data_dir / "lab" / "benign-seed2"
    train = benign_slice(source, tmp_path / "train", start=0.0, stop=0.7)
    validation = benign_slice(source, tmp_path / "validation", start=0.7, stop=1.0)
    return train, validation


def test_protocol_compares_configurations_without_reading_training_labels(
    benign_split, data_dir, monkeypatch
):
    train, validation = benign_split
    opened = []
    real = dataset_module.load_ground_truth

    def spy(path):
        opened.append(path)
        return real(path)

    monkeypatch.setattr(dataset_module, "load_ground_truth", spy)
    attack = data_dir / "lab" / "nodlink-ubuntu-seed1"
    plan = ProtocolPlan(
        train=[train],
        validation=[validation],
        test=[attack],
        seeds=[1, 2],
        rules=[bundled_rules()],
        training=SMALL,
    )
    lines: list[str] = []
    report = run_protocol(plan, progress=lines.append)
    # only the test dataset's labels were opened, and only to score it
    assert {p.parent for p in opened} == {attack}
    assert [(r.seed, r.configuration) for r in report.runs] == [
        (1, "rules"),
        (1, "model"),
        (1, "both"),
        (2, "rules"),
        (2, "model"),
        (2, "both"),
    ]
    assert report.training_processes > 0 and report.validation_processes > 0
    for run in report.runs:
        assert run.incident_rule.min_score > 0  # calibrated on validation campaigns
        assert "calibrated" in run.incident_rule.source
        assert (run.model_threshold is None) == (run.configuration == "rules")
    summary = report.summary()
    assert set(summary) == {"rules", "model", "both"}
    assert set(summary["both"]) == set(METRICS)
    detection = summary["rules"]["incident_detection"]
    assert detection is not None and detection[1] == 0.0  # rules do not depend on the seed
    assert any("model trained" in line for line in lines)


def test_attack_data_is_refused_for_training(benign_split, data_dir, tmp_path):
    train, validation = benign_split
    attack = data_dir / "lab" / "nodlink-ubuntu-seed1"
    plan = ProtocolPlan(
        train=[train, attack], validation=[validation], test=[], seeds=[1], rules=[]
    )
    with pytest.raises(ConfigError, match="benign only"):
        run_protocol(plan, progress=print)
    copy = shutil.copytree(attack, tmp_path / "attack-as-validation")
    plan = ProtocolPlan(train=[train], validation=[copy], test=[], seeds=[1], rules=[])
    with pytest.raises(ConfigError, match="validation"):
        run_protocol(plan, progress=print)


def test_seeds_in_parallel_give_the_same_results(benign_split, data_dir):
    train, validation = benign_split
    attack = data_dir / "lab" / "nodlink-ubuntu-seed1"
    plan = ProtocolPlan(
        train=[train],
        validation=[validation],
        test=[attack],
        seeds=[1, 2],
        rules=[bundled_rules()],
        configurations=["rules"],
    )
    sequential = run_protocol(plan, progress=print)
    parallel = run_protocol(plan, progress=print, jobs=2)
    assert [r.seed for r in parallel.runs] == [1, 2]

    def figures(report):  # latencies include wall-clock time: everything else is equal
        return [
            {k: v for k, v in r.report.totals().items() if not k.startswith("latency")}
            for r in report.runs
        ]

    assert figures(parallel) == figures(sequential)
