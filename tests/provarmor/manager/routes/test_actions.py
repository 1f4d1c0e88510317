"""``/api/v1/actions`` on SQLite and PostgreSQL: analysts propose and execute kill, suspend,
quarantine and block; isolate and lock_user wait for an admin's approval (an analyst cannot
give it); bad proposals are refused naming the field; every step is in the action's audit
trail; actions are listed per host and per incident; only done, undoable actions are
undone."""

import pytest

from provarmor.manager.auth import Role
from provarmor.model.errors import ParseError

HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
PROCESS = {"type": "process", "entity_id": "e1", "pid": 4242, "executable": "/tmp/implant"}


def post(manager, path: str, token: str, body: dict | None = None):
    return manager.client.post(f"/api/v1{path}", json=body or {}, headers=manager.headers(token))


def propose(manager, token: str, **body):
    answer = post(manager, "/actions", token, {"host_id": HOST} | body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_an_analyst_proposes_and_executes_a_kill(manager):
    manager.enroll(host_id=HOST)
    analyst = manager.token(Role.ANALYST)
    proposed = propose(manager, analyst, kind="kill", target=PROCESS, reason="implant")
    assert (proposed["state"], proposed["needs_approval"]) == ("proposed", False)
    assert proposed["proposed_by"].startswith("analyst:")
    queued = post(manager, f"/actions/{proposed['id']}/execute", analyst, {"reason": "go"})
    assert queued.status_code == 200, queued.text
    assert queued.json()["state"] == "queued"
    assert queued.json()["expires_ns"] > proposed["created_ns"]
    again = post(manager, f"/actions/{proposed['id']}/execute", analyst)
    assert again.status_code == 409  # queued already: not twice
    trail = manager.get(f"/actions/{proposed['id']}", analyst).json()["audit"]
    assert [(s["step"], s["state"], s["reason"]) for s in trail] == [
        ("proposed", "proposed", "implant"),
        ("executed", "queued", "go"),
    ]
    undo = post(manager, f"/actions/{proposed['id']}/undo", analyst)
    assert undo.status_code == 409
    assert "cannot be undone" in undo.json()["error"]


def test_isolate_needs_an_admins_approval(manager):
    manager.enroll(host_id=HOST)
    analyst = manager.token(Role.ANALYST)
    proposed = propose(manager, analyst, kind="isolate", target={"type": "host"})
    assert proposed["needs_approval"] is True
    refused = post(manager, f"/actions/{proposed['id']}/execute", analyst)
    assert refused.status_code == 409
    assert "approval" in refused.json()["error"]
    not_admin = post(manager, f"/actions/{proposed['id']}/approve", analyst)
    assert not_admin.status_code == 403
    approved = post(manager, f"/actions/{proposed['id']}/approve", manager.admin, {"reason": "ok"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"].startswith("admin:")
    queued = post(manager, f"/actions/{proposed['id']}/execute", analyst)
    assert queued.json()["state"] == "queued"
    steps = [s["step"] for s in manager.get(f"/actions/{proposed['id']}").json()["audit"]]
    assert steps == ["proposed", "approved", "executed"]


def test_approval_is_configurable_and_only_for_kinds_that_need_it(make_manager, tmp_path):
    manager = make_manager(tmp_path, approval_required=("kill",))
    manager.enroll(host_id=HOST)
    analyst = manager.token(Role.ANALYST)
    kill = propose(manager, analyst, kind="kill", target=PROCESS)
    lock = propose(manager, analyst, kind="lock_user", target={"type": "user", "name": "bob"})
    assert (kill["needs_approval"], lock["needs_approval"]) == (True, False)
    assert post(manager, f"/actions/{lock['id']}/execute", analyst).status_code == 200
    answer = post(manager, f"/actions/{lock['id']}/approve", manager.admin)
    assert answer.status_code == 409
    assert "needs no approval" in answer.json()["error"]


def test_bad_proposals_name_the_field(manager):
    manager.enroll(host_id=HOST)
    cases = [
        ({"kind": "explode", "target": PROCESS}, "kind"),
        ({"kind": "restore", "target": {"type": "quarantined", "quarantine_id": "q"}}, "kind"),
        ({"kind": "kill", "target": {"type": "process", "pid": 1}}, "target"),
        ({"kind": "kill", "target": {"type": "file", "path": "/tmp/x"}}, "target"),
        ({"kind": "kill", "target": PROCESS, "host_id": "unknown"}, "host_id"),
        ({"kind": "kill", "target": PROCESS, "host_id": ""}, "host_id"),
        ({"kind": "kill", "target": PROCESS, "incident_id": "inc-nope"}, "incident_id"),
    ]
    for body, field in cases:
        answer = post(manager, "/actions", manager.admin, {"host_id": HOST} | body)
        assert answer.status_code in (400, 404, 422), (body, answer.text)
        assert field in answer.text, (body, answer.text)
    assert manager.get("/actions").json() == {"actions": []}
    assert post(manager, "/actions", manager.token(Role.AGENT), {}).status_code in (401, 403)


def test_actions_are_listed_per_incident_and_per_host(loaded):
    manager = loaded
    (incident,) = manager.get("/incidents").json()
    on_incident = propose(
        manager,
        manager.admin,
        kind="block",
        target={"type": "network", "ip": "10.9.9.9", "port": 4444},
        incident_id=incident["id"],
        host_id="",
    )
    assert on_incident["host_id"] == incident["host_id"]
    propose(manager, manager.admin, kind="quarantine", target={"type": "file", "path": "/tmp/x"})
    listed = manager.get("/actions", incident_id=incident["id"]).json()["actions"]
    assert [a["id"] for a in listed] == [on_incident["id"]]
    assert listed[0]["target"] == {"type": "network", "ip": "10.9.9.9", "port": 4444}
    assert len(manager.get("/actions", host_id=incident["host_id"]).json()["actions"]) == 2
    assert manager.get("/actions", host_id="other").json()["actions"] == []
    assert manager.get("/actions", state="queued").json()["actions"] == []
    assert manager.get("/actions/act-nope").status_code == 404


FILE = {"type": "file", "path": "/tmp/implant"}


def test_manual_actions_count_against_the_policys_rate_limit(make_manager, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("mode: enforce\nrate_limit:\n  actions: 2\n  seconds: 3600\n")
    limited = make_manager(tmp_path / "m", response_policy=policy)
    agent, credential = limited.enroll(host_id=HOST)
    other_host = "0f0e0d0c0b0a09080706050403020100"
    limited.enroll(host_id=other_host)
    analyst = limited.token(Role.ANALYST)
    first, second, third = (
        propose(limited, analyst, kind="quarantine", target=FILE)["id"] for _ in range(3)
    )
    for action in (first, second):
        assert post(limited, f"/actions/{action}/execute", analyst).status_code == 200
    refused = post(limited, f"/actions/{third}/execute", analyst)
    assert refused.status_code == 429, refused.text
    assert refused.json() == {
        "error": f"rate limit: 2 actions in 3600 s on host {HOST}",
        "field": "action_id",
    }
    view = limited.get(f"/actions/{third}", analyst).json()
    assert view["state"] == "proposed"  # nothing queued
    assert (view["audit"][-1]["step"], view["audit"][-1]["state"]) == (
        "execute refused",
        "proposed",
    )
    assert view["audit"][-1]["message"] == refused.json()["error"]
    assert view["audit"][-1]["author"].startswith("analyst:")
    # the limit is per host: another host's action still runs
    elsewhere = propose(limited, analyst, kind="kill", target=PROCESS, host_id=other_host)
    assert post(limited, f"/actions/{elsewhere['id']}/execute", analyst).status_code == 200
    # an undo is never limited: taking an action back stays possible at the limit
    done = limited.client.post(
        f"/api/v1/agents/{agent}/commands/{first}/result",
        json={"outcome": "done"},
        headers=limited.headers(credential),
    )
    assert done.json()["state"] == "done"
    undo = post(limited, f"/actions/{first}/undo", analyst)
    assert undo.status_code == 200, undo.text
    text = limited.client.get("/metrics").text
    assert 'provarmor_manager_commands_total{event="rate_limited"} 1.0' in text


def test_the_default_rate_limit_applies_without_a_policy(make_manager, tmp_path):
    default = make_manager(tmp_path / "m")
    default.enroll(host_id=HOST)
    analyst = default.token(Role.ANALYST)
    for _ in range(20):
        action = propose(default, analyst, kind="kill", target=PROCESS)["id"]
        assert post(default, f"/actions/{action}/execute", analyst).status_code == 200
    action = propose(default, analyst, kind="kill", target=PROCESS)["id"]
    assert post(default, f"/actions/{action}/execute", analyst).status_code == 429


def test_a_bad_response_policy_names_its_line(make_manager, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rate_limit:\n  actions: many\n")
    with pytest.raises(ParseError) as caught:
        make_manager(tmp_path / "m", response_policy=policy)
    assert f"{policy}:2" in str(caught.value)
