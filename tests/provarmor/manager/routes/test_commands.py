"""The command channel on SQLite and PostgreSQL: an agent gets the queued commands of its
own host only; a command is handed again until its result comes (a redelivery is counted);
one not fetched before its expiry is expired, counted and audited, never delivered; a
result moves the action once; an undo comes back as its own command."""

import time

from provarmor.manager.auth import Role

HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
OTHER = "0f0e0d0c0b0a09080706050403020100"
FILE = {"type": "file", "path": "/tmp/implant"}


def post(manager, path: str, token: str, body: dict | None = None):
    return manager.client.post(f"/api/v1{path}", json=body or {}, headers=manager.headers(token))


def queued(manager, *, expires_seconds: int = 0, host: str = HOST) -> str:
    answer = post(
        manager, "/actions", manager.admin, {"kind": "quarantine", "target": FILE, "host_id": host}
    )
    action = answer.json()["id"]
    answer = post(
        manager, f"/actions/{action}/execute", manager.admin, {"expires_seconds": expires_seconds}
    )
    assert answer.status_code == 200, answer.text
    return action


def fetch(manager, agent: str, credential: str) -> list[dict]:
    answer = manager.client.get(
        f"/api/v1/agents/{agent}/commands", headers=manager.headers(credential)
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["commands"]


def report(manager, agent, credential, command_id, **result):
    return post(manager, f"/agents/{agent}/commands/{command_id}/result", credential, result)


def metric(manager, event: str) -> float:
    text = manager.client.get("/metrics").text
    line = f'provarmor_manager_commands_total{{event="{event}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


def test_a_command_goes_to_its_host_until_its_result_comes(manager):
    agent, credential = manager.enroll(host_id=HOST)
    other, other_credential = manager.enroll(host_id=OTHER)
    action = queued(manager)
    assert fetch(manager, other, other_credential) == []  # not its host
    (command,) = fetch(manager, agent, credential)
    assert (command["id"], command["command"]) == (action, "run")
    assert command["request"]["kind"] == "quarantine"
    assert command["request"]["target"] == FILE
    assert command["request"]["host_id"] == HOST
    (again,) = fetch(manager, agent, credential)  # no result yet: handed again
    assert again["id"] == action
    assert manager.get(f"/actions/{action}").json()["deliveries"] == 2
    assert metric(manager, "redelivered") == 1
    # another host's agent cannot report it, nor can an agent write as another
    assert report(manager, other, other_credential, action, outcome="done").status_code == 404
    assert report(manager, agent, other_credential, action, outcome="done").status_code == 403
    bad = report(manager, agent, credential, action, outcome="maybe")
    assert bad.status_code == 400
    assert bad.json()["field"] == "body"
    undo_target = {"type": "quarantined", "quarantine_id": "q1"}
    done = report(
        manager, agent, credential, action, outcome="done", message="moved", undo_target=undo_target
    )
    assert done.json() == {"action_id": action, "state": "done", "recorded": True}
    repeated = report(manager, agent, credential, action, outcome="done", message="moved")
    assert repeated.json()["recorded"] is False  # a second report changes nothing
    assert fetch(manager, agent, credential) == []
    view = manager.get(f"/actions/{action}").json()
    assert view["result"]["undo_target"] == undo_target
    steps = [(s["step"], s["author"].split(":")[0]) for s in view["audit"]]
    assert steps == [
        ("proposed", "admin"),
        ("executed", "admin"),
        ("run delivered", "agent"),
        ("result", "agent"),
    ]


def test_an_undo_is_a_command_of_its_own(manager):
    agent, credential = manager.enroll(host_id=HOST)
    action = queued(manager)
    fetch(manager, agent, credential)
    report(manager, agent, credential, action, outcome="done")
    analyst = manager.token(Role.ANALYST)
    assert post(manager, f"/actions/{action}/undo", analyst).json()["state"] == "queued"
    (command,) = fetch(manager, agent, credential)
    assert (command["id"], command["command"]) == (f"{action}-undo", "undo")
    failed = report(manager, agent, credential, f"{action}-undo", outcome="failed", message="x")
    assert failed.json()["state"] == "done"  # the undo did not work: still in effect
    post(manager, f"/actions/{action}/undo", analyst)
    fetch(manager, agent, credential)
    undone = report(manager, agent, credential, f"{action}-undo", outcome="done")
    assert undone.json()["state"] == "undone"
    steps = [s["step"] for s in manager.get(f"/actions/{action}").json()["audit"]]
    assert steps[-3:] == ["undo (restore)", "undo delivered", "undo result"]


def test_a_command_not_fetched_before_its_expiry_is_expired_and_counted(manager):
    agent, credential = manager.enroll(host_id=HOST)
    action = queued(manager, expires_seconds=1)
    waiting = queued(manager, expires_seconds=3600)
    deadline = time.monotonic() + 5
    while manager.get(f"/actions/{action}").json()["expires_ns"] > time.time_ns():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [c["id"] for c in fetch(manager, agent, credential)] == [waiting]
    view = manager.get(f"/actions/{action}").json()
    assert view["state"] == "expired"
    assert view["audit"][-1]["step"] == "run expired"
    assert metric(manager, "expired") == 1
    assert report(manager, agent, credential, action, outcome="done").json()["recorded"] is False


def wait_for_state(manager, action: str, state: str, *, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = manager.get(f"/actions/{action}").json()
        if view["state"] == state:
            return view
        assert time.monotonic() < deadline, f"still {view['state']}, not {state}"
        time.sleep(0.05)


def test_a_delivered_command_without_a_result_times_out(make_manager, tmp_path):
    manager = make_manager(tmp_path / "m", result_seconds=1)
    agent, credential = manager.enroll(host_id=HOST)
    action = queued(manager)
    (command,) = fetch(manager, agent, credential)
    assert manager.get(f"/actions/{action}").json()["state"] == "delivered"
    view = wait_for_state(manager, action, "timed_out")
    last = view["audit"][-1]
    assert (last["step"], last["author"], last["state"]) == (
        "run timed out",
        "manager",
        "timed_out",
    )
    assert "within 1 s" in last["message"]
    assert metric(manager, "timed_out") == 1
    assert fetch(manager, agent, credential) == []  # given up: not handed again
    # a result that comes late still tells what happened
    late = report(manager, agent, credential, command["id"], outcome="done", message="moved")
    assert late.json() == {"action_id": action, "state": "done", "recorded": True}
    steps = [entry["step"] for entry in manager.get(f"/actions/{action}").json()["audit"]]
    assert steps[-3:] == ["run delivered", "run timed out", "result"]


def test_a_queued_command_is_not_timed_out_while_it_waits_for_its_agent(make_manager, tmp_path):
    manager = make_manager(tmp_path / "m", result_seconds=1)
    manager.enroll(host_id=HOST)
    action = queued(manager, expires_seconds=60)
    time.sleep(1.2)  # past result_seconds: only a delivered command's result is awaited
    assert manager.get(f"/actions/{action}").json()["state"] == "queued"


def test_a_bus_receipt_marks_the_command_delivered_once(make_manager, tmp_path):
    manager = make_manager(tmp_path / "m")
    agent, credential = manager.enroll(host_id=HOST)
    action = queued(manager)
    first = post(manager, f"/agents/{agent}/commands/{action}/delivered", credential)
    assert first.json() == {"action_id": action, "state": "delivered", "recorded": True}
    again = post(manager, f"/agents/{agent}/commands/{action}/delivered", credential)
    assert again.json()["recorded"] is False
    other, other_credential = manager.enroll(host_id=OTHER)
    assert (
        post(manager, f"/agents/{other}/commands/{action}/delivered", other_credential).status_code
        == 404
    )
    view = manager.get(f"/actions/{action}").json()
    assert [e["step"] for e in view["audit"]][-1] == "run delivered"
    assert view["audit"][-1]["message"] == "received from the bus"
    assert metric(manager, "delivered") == 1
    # without a bus the manager has no command key to hand out
    assert manager.get(f"/agents/{agent}/command-key", credential).status_code == 409
