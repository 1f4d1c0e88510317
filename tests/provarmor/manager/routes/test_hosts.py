"""The host routes: every host with its agents, their acknowledged sequence and status."""

import dataclasses
from pathlib import Path

import pytest

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.manager.auth import Role

MODEL = Path(__file__).parents[3] / "data" / "anomaly" / "model-v2.bundle"


def test_no_host_before_enrolment(manager):
    assert manager.get("/hosts").json() == []


def test_hosts_list_each_enrolled_host_with_its_agents(manager, lab_lines):
    agent_id, credential = manager.enroll(hostname="lab")
    other_id, _ = manager.enroll(host_id="h-two", hostname="two")
    manager.upload(agent_id, credential, sequence=4, body=b"".join(lab_lines[:4]))
    hosts = {host["id"]: host for host in manager.get("/hosts").json()}
    assert set(hosts) == {"3d1219c7c4c5404aaa1f6d2a48adfda4", "h-two"}
    lab = hosts["3d1219c7c4c5404aaa1f6d2a48adfda4"]
    assert lab["events"] == 4
    assert lab["alerts"] == 0
    [agent] = lab["agents"]
    assert agent["id"] == agent_id
    assert agent["hostname"] == "lab"
    assert agent["acked_sequence"] == 4
    assert agent["status"] is None
    assert [a["id"] for a in hosts["h-two"]["agents"]] == [other_id]
    assert hosts["h-two"]["events"] == 0


def test_one_host_shows_its_agents_last_status(manager):
    agent_id, credential = manager.enroll(host_id="h-status")
    report = {"sensor": "ebpf", "healthy": False, "blind_reason": "drops", "drops": {"kernel": 7}}
    manager.client.post(
        f"/api/v1/agents/{agent_id}/status", json=report, headers=manager.headers(credential)
    )
    host = manager.get("/hosts/h-status").json()
    assert host["id"] == "h-status"
    status = host["agents"][0]["status"]
    assert status["sensor"] == "ebpf"
    assert status["drops"] == {"kernel": 7}
    assert status["healthy"] is False
    assert host["agents"][0]["status_ns"] > 0
    missing = manager.get("/hosts/nope")
    assert missing.status_code == 404
    assert missing.json()["field"] == "host_id"


def test_a_manager_with_an_operators_model_shows_no_learning(make_manager, kit, tmp_path):
    model = load_bundle(MODEL)
    manager = make_manager(tmp_path, with_kit=dataclasses.replace(kit, model=model, learning=None))
    manager.enroll(host_id="h-model")
    assert manager.get("/hosts/h-model").json()["learning"] is None


def test_hosts_need_an_analyst(manager):
    _, credential = manager.enroll()
    assert manager.client.get("/api/v1/hosts").status_code == 401
    assert manager.get("/hosts", token=credential).status_code == 403
    assert manager.get("/hosts", token=manager.token(Role.ANALYST)).status_code == 200


LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
BATCH = 2_000


def _learning_kit(kit, **settings):
    defaults = {"window_seconds": 75, "relearn_interval_seconds": 0}
    return dataclasses.replace(kit, learning=LearningSettings(**(defaults | settings)))


def _upload_all(manager, agent_id, credential, lines, *, first_sequence=0):
    sequence = first_sequence
    for start in range(0, len(lines), BATCH):
        body = b"".join(lines[start : start + BATCH])
        sequence += len(lines[start : start + BATCH])
        answer = manager.upload(agent_id, credential, sequence=sequence, body=body)
        assert answer.status_code == 200, answer.text
    return sequence


def _anomaly_alerts(manager):
    alerts = manager.get("/alerts", host=LAB_HOST, limit=1000).json()
    return [alert for alert in alerts if alert["rule_id"] == "provarmor.anomaly.process"]


@pytest.mark.slow
def test_a_host_without_a_model_learns_then_the_attack_raises_anomaly_alerts(
    make_manager, kit, tmp_path, benign_lines, lab_lines
):
    manager = make_manager(tmp_path, with_kit=_learning_kit(kit))
    agent_id, credential = manager.enroll()
    waiting = manager.get(f"/hosts/{LAB_HOST}").json()["learning"]  # nothing uploaded yet
    assert waiting["phase"] == "learning"
    assert waiting["window_start_ns"] == 0
    assert waiting["events"] == 0
    sequence = _upload_all(manager, agent_id, credential, benign_lines[:BATCH])
    learning = manager.get(f"/hosts/{LAB_HOST}").json()["learning"]
    assert learning["phase"] == "learning"
    assert learning["events"] == BATCH
    assert learning["window_seconds"] == 75
    assert 0 < learning["time_left_seconds"] < 75
    assert learning["model_version"] == 0
    sequence = _upload_all(
        manager, agent_id, credential, benign_lines[BATCH:], first_sequence=sequence
    )
    assert _anomaly_alerts(manager) == []  # learning: the detector is silent
    learning = manager.get(f"/hosts/{LAB_HOST}").json()["learning"]
    assert learning["phase"] == "enabled"
    assert learning["model_version"] == 1
    assert learning["versions"] == [1]
    assert learning["threshold"] > 1.0
    assert learning["threshold_source"].startswith("learned on this host: quantile 0.995")
    assert learning["trained_wall"]
    assert learning["learned_window"][1] - learning["learned_window"][0] == 75 * 10**9
    _upload_all(manager, agent_id, credential, lab_lines, first_sequence=sequence)
    found = _anomaly_alerts(manager)
    # Measured: one anomaly alert, on the attacker's process.
    assert found
    assert all(alert["score"] >= 1.0 for alert in found)
    listed = {host["id"]: host for host in manager.get("/hosts").json()}
    assert listed[LAB_HOST]["learning"]["model_version"] == 1
    bundles = sorted(path.name for path in (tmp_path / "models").glob("*/*.bundle"))
    assert bundles == ["model-v0001.bundle"]


@pytest.mark.slow
def test_learning_progress_survives_a_manager_restart(make_manager, kit, tmp_path, benign_lines):
    learning_kit = _learning_kit(kit)
    first = make_manager(tmp_path, with_kit=learning_kit)
    agent_id, credential = first.enroll()
    half = len(benign_lines) // 2
    sequence = _upload_all(first, agent_id, credential, benign_lines[:half])
    before = first.get(f"/hosts/{LAB_HOST}").json()["learning"]
    first.client.app.state.context.ingestor.close()
    first.store.close()
    second = make_manager(tmp_path, with_kit=learning_kit)
    # Before the host uploads again the status comes from the checkpoint's status file.
    restored = second.get(f"/hosts/{LAB_HOST}").json()["learning"]
    assert restored["events"] == before["events"] == half
    assert restored["window_start_ns"] == before["window_start_ns"]
    _upload_all(second, agent_id, credential, benign_lines[half:], first_sequence=sequence)
    learning = second.get(f"/hosts/{LAB_HOST}").json()["learning"]
    assert learning["phase"] == "enabled"
    assert learning["model_version"] == 1
    assert learning["dropped"] == {}
