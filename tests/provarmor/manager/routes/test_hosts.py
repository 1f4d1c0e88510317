"""The host routes: every host with its agents, their acknowledged sequence and status."""

from provarmor.manager.auth import Role


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


def test_hosts_need_an_analyst(manager):
    _, credential = manager.enroll()
    assert manager.client.get("/api/v1/hosts").status_code == 401
    assert manager.get("/hosts", token=credential).status_code == 403
    assert manager.get("/hosts", token=manager.token(Role.ANALYST)).status_code == 200
