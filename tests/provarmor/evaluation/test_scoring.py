import pytest

from provarmor.evaluation.dataset import load_dataset
from provarmor.evaluation.scoring import DatasetScore, adp, evaluate, mean_std
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis


@pytest.fixture
def datasets(data_dir):
    return [
        load_dataset(data_dir / "lab" / "nodlink-ubuntu-seed1"),
        load_dataset(data_dir / "lab" / "benign-seed2"),
    ]


def test_no_detectors_report_zeros_honestly(datasets):
    report = evaluate(datasets, lambda: build_analysis(AnalysisPlan()))
    totals = report.totals()
    assert totals["incident_detection"] == 0.0
    assert totals["alert_detection"] == 0.0
    assert totals["node_precision"] is None
    assert totals["node_recall"] == 0.0
    assert totals["false_alerts_per_host_hour"] == 0.0
    assert totals["false_incidents_per_host_hour"] == 0.0
    assert totals["latency_p99_s"] is None
    assert report.datasets[0].techniques_expected
    assert report.datasets[0].techniques_found == set()


def test_rules_find_the_attack_as_one_incident(datasets, shared_data):
    plan = AnalysisPlan(rules=(shared_data / "sigma",))
    report = evaluate(datasets, lambda: build_analysis(plan))
    attack, benign = report.datasets
    assert attack.alert_detected and attack.detected
    assert attack.true_incidents == 1
    assert attack.recall is not None and attack.recall > 0.5
    assert attack.latencies_s and max(attack.latencies_s) < 5
    assert attack.techniques_found <= attack.techniques_expected
    assert benign.kind == "benign" and benign.true_incidents == 0
    assert 0.0 <= report.adp <= 1.0


def _ranked(kind, malicious, *incidents):
    score = DatasetScore(name=kind, kind=kind, seed=0, hours=0.1, events=1, malicious=malicious)
    score.ranked = [(value, frozenset(processes)) for value, processes in incidents]
    return score


def test_adp_is_one_for_a_perfect_ranking_and_lower_with_noise():
    perfect = _ranked("scenario", {"p"}, (9.0, {"p"}))
    quiet = _ranked("benign", set(), (1.0, {"q"}))
    assert adp([perfect, quiet]) == pytest.approx(1.0)
    noisy = _ranked("scenario", {"p"}, (1.0, {"p", "q", "r", "s"}))
    assert adp([noisy]) < 0.7
    inverted = _ranked("benign", set(), (9.0, {"b1", "b2", "b3"}))
    assert adp([_ranked("scenario", {"p"}, (1.0, {"p"})), inverted]) < 0.7


def test_mean_std_ignores_unknown_values():
    assert mean_std([None, None]) is None
    assert mean_std([2.0]) == (2.0, 0.0)
    mean, std = mean_std([1.0, 3.0, None])
    assert (mean, round(std, 6)) == (2.0, round(2**0.5, 6))
