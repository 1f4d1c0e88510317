import pytest

from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.lab.dataset import load_dataset
from provarmor.lab.evaluation import DatasetScore, adp, evaluate
from provarmor.model.alert import Alert


@pytest.fixture
def datasets(data_dir):
    return [
        load_dataset(data_dir / "lab" / "nodlink-ubuntu-seed1"),
        load_dataset(data_dir / "lab" / "benign-seed2"),
    ]


def test_no_detectors_report_zeros_honestly(datasets):
    report = evaluate(datasets, list)
    totals = report.totals()
    assert totals["incident_detection"] == 0.0
    assert totals["alert_detection"] == 0.0
    assert totals["node_precision"] is None
    assert totals["node_recall"] == 0.0
    assert totals["false_alerts_per_host_hour"] == 0.0
    assert report.datasets[0].techniques_expected
    assert report.datasets[0].techniques_found == set()


def test_sigma_rules_detect_the_attack(datasets, shared_data):
    def detectors():
        return [SigmaDetector.from_paths([shared_data / "sigma"])[0]]

    report = evaluate(datasets, detectors)
    attack, benign = report.datasets
    assert attack.detected
    assert attack.true_alerts > 0
    assert attack.recall is not None and attack.recall > 0
    assert attack.latency_s is not None
    assert benign.kind == "benign"
    assert 0.0 <= report.adp <= 1.0


def _alert(level, processes):
    return Alert(id="a", rule_id="r", rule_title="t", level=level, process_entity_ids=processes)


def test_adp_is_one_for_a_perfect_detector_and_lower_with_noise():
    perfect = DatasetScore(name="s", kind="scenario", seed=0, hours=0.1, events=1, malicious={"p"})
    perfect.alerts_by_level = {"high": [_alert("high", ("p",))]}
    assert adp([perfect]) == pytest.approx(1.0)
    noisy = DatasetScore(name="s", kind="scenario", seed=0, hours=0.1, events=1, malicious={"p"})
    noisy.alerts_by_level = {"low": [_alert("low", ("p", "q", "r", "s"))]}
    assert adp([noisy]) < 0.7
