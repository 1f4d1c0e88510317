"""The manager API end to end (TestClient), against SQLite and PostgreSQL."""

import gzip
import json

import pytest

from provarmor.manager.auth import Role

LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def _lab_batches(lines, size=500):
    """(sequence, body) per batch of the lab capture; the sequence is the spool's next."""
    return [
        (start + len(lines[start : start + size]), b"".join(lines[start : start + size]))
        for start in range(0, len(lines), size)
    ]


def test_enrolment_gives_a_credential_that_uploads(manager, lab_lines):
    agent_id, credential = manager.enroll()
    assert credential.startswith(f"pa.{agent_id}.")
    answer = manager.upload(agent_id, credential, sequence=3, body=b"".join(lab_lines[:3]))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "acked_sequence": 3,
        "duplicate": False,
        "events": 3,
        "alerts": 0,
        "incidents": 0,
    }
    hosts = manager.get("/hosts").json()
    assert [host["id"] for host in hosts] == [LAB_HOST]
    assert hosts[0]["events"] == 3
    assert hosts[0]["agents"][0]["acked_sequence"] == 3


def test_enrolment_token_is_single_use(manager):
    token = manager.token(Role.ENROLL)
    body = {"token": token, "host_id": "h1", "hostname": "one"}
    assert manager.client.post("/api/v1/enroll", json=body).status_code == 201
    again = manager.client.post("/api/v1/enroll", json=body)
    assert again.status_code == 401
    assert again.json() == {"error": "invalid, used or expired enrolment token", "field": "token"}


def test_expired_enrolment_token_is_refused(manager):
    from provarmor.manager.routes.tokens import create_token

    expired = create_token(manager.store, role=Role.ENROLL, valid_ns=1)  # gone in 1 ns
    answer = manager.client.post("/api/v1/enroll", json={"token": expired.token, "host_id": "h1"})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    "token",
    [
        "pa.0123456789abcdef." + "0" * 64,  # well formed, unknown
        "not-a-token",
        "",
    ],
)
def test_enrolment_with_a_wrong_token_is_401(manager, token):
    answer = manager.client.post("/api/v1/enroll", json={"token": token or "x", "host_id": "h"})
    assert answer.status_code == 401


def test_user_token_cannot_enrol(manager):
    answer = manager.client.post("/api/v1/enroll", json={"token": manager.admin, "host_id": "h"})
    assert answer.status_code == 401


def test_wrong_secret_of_a_real_token_is_401(manager):
    agent_id, credential = manager.enroll()
    forged = credential[:-4] + ("0000" if not credential.endswith("0000") else "1111")
    answer = manager.upload(agent_id, forged, sequence=1, body=b"")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert manager.get("/hosts", token=forged).status_code == 401


def test_no_unauthenticated_access(manager):
    for path in ("/hosts", "/events", "/alerts", "/incidents", "/rules", "/stats/timeline"):
        assert manager.client.get(f"/api/v1{path}").status_code == 401, path
    assert manager.client.post("/api/v1/tokens", json={"role": "admin"}).status_code == 401
    assert manager.client.post("/api/v1/enrollment-tokens", json={}).status_code == 401
    answer = manager.client.post("/api/v1/agents/x/batches", content=b"{}")
    assert answer.status_code == 401
    assert answer.json()["field"] == "Authorization"


def test_roles(manager):
    analyst = manager.token(Role.ANALYST)
    created = manager.client.post(
        "/api/v1/tokens", json={"role": "analyst"}, headers=manager.headers(analyst)
    )
    assert created.status_code == 403
    assert created.json() == {"error": "this needs the admin role", "field": "Authorization"}
    assert (
        manager.client.post(
            "/api/v1/enrollment-tokens", json={}, headers=manager.headers(analyst)
        ).status_code
        == 403
    )
    assert manager.get("/incidents", token=analyst).status_code == 200
    made = manager.client.post(
        "/api/v1/tokens", json={"role": "analyst"}, headers=manager.headers(manager.admin)
    )
    assert made.status_code == 201
    assert manager.get("/alerts", token=made.json()["token"]).status_code == 200
    bad_role = manager.client.post(
        "/api/v1/tokens", json={"role": "agent"}, headers=manager.headers(manager.admin)
    )
    assert bad_role.status_code == 400
    assert bad_role.json()["field"] == "role"


def test_agent_reads_nothing_and_writes_only_as_itself(manager):
    agent_id, credential = manager.enroll()
    other_id, _ = manager.enroll(host_id="other-host")
    assert manager.get("/hosts", token=credential).status_code == 403
    answer = manager.upload(other_id, credential, sequence=1, body=b"")
    assert answer.status_code == 403
    status = manager.client.post(
        f"/api/v1/agents/{other_id}/status", json={}, headers=manager.headers(credential)
    )
    assert status.status_code == 403
    assert manager.upload(agent_id, manager.admin, sequence=1, body=b"").status_code == 403


def test_replayed_batch_is_acked_as_duplicate_without_new_rows(manager, lab_lines):
    agent_id, credential = manager.enroll()
    body = b"".join(lab_lines[:200])
    first = manager.upload(agent_id, credential, sequence=200, body=body)
    again = manager.upload(agent_id, credential, sequence=200, body=body)
    older = manager.upload(agent_id, credential, sequence=100, body=body)
    assert first.json()["duplicate"] is False
    assert again.status_code == 200
    assert again.json() == {
        "acked_sequence": 200,
        "duplicate": True,
        "events": 0,
        "alerts": 0,
        "incidents": 0,
    }
    assert older.json()["duplicate"] is True
    events = manager.get("/events", host=LAB_HOST, limit=1000).json()
    assert len(events) == 200
    assert len({event["event_id"] for event in events}) == 200
    metrics = manager.client.get("/metrics").text
    assert 'provarmor_manager_uploads_total{result="accepted"} 1.0' in metrics
    assert 'provarmor_manager_uploads_total{result="duplicate"} 2.0' in metrics
    assert "provarmor_manager_events_total 200.0" in metrics


def test_oversized_batch_is_413(manager, lab_lines):
    agent_id, credential = manager.enroll()
    limit = manager.settings.max_upload_bytes
    body = b"".join(lab_lines) * (limit // len(b"".join(lab_lines)) + 1)
    assert len(body) > limit
    answer = manager.upload(agent_id, credential, sequence=1, body=body)
    assert answer.status_code == 413
    assert answer.json()["field"] == "body"
    # small when compressed, over the limit once decompressed
    bomb = gzip.compress(b"\n" * (limit + 10))
    assert len(bomb) < limit
    answer = manager.upload(
        agent_id, credential, sequence=1, body=bomb, **{"Content-Encoding": "gzip"}
    )
    assert answer.status_code == 413
    assert "decompressed" in answer.json()["error"]
    assert manager.get("/hosts").json()[0]["events"] == 0


def test_too_many_events_is_413(make_manager, lab_lines, tmp_path):
    small = make_manager(tmp_path / "small", max_batch_events=10)
    agent_id, credential = small.enroll()
    answer = small.upload(agent_id, credential, sequence=11, body=b"".join(lab_lines[:11]))
    assert answer.status_code == 413
    assert "more than 10 events" in answer.json()["error"]
    assert (
        small.upload(agent_id, credential, sequence=10, body=b"".join(lab_lines[:10])).json()[
            "events"
        ]
        == 10
    )


def test_gzip_batch_is_accepted(manager, lab_lines):
    agent_id, credential = manager.enroll()
    body = gzip.compress(b"".join(lab_lines[:50]))
    answer = manager.upload(
        agent_id, credential, sequence=50, body=body, **{"Content-Encoding": "gzip"}
    )
    assert answer.status_code == 200
    assert answer.json()["events"] == 50


def test_malformed_event_is_400_naming_the_line_and_nothing_is_stored(manager, lab_lines):
    agent_id, credential = manager.enroll()
    body = lab_lines[0] + lab_lines[1] + b'{"@timestamp": "soon"}\n' + lab_lines[2]
    answer = manager.upload(agent_id, credential, sequence=4, body=body)
    assert answer.status_code == 400
    assert answer.json()["field"] == "batch:3"
    assert answer.json()["error"].startswith("batch:3: not a canonical event")
    assert manager.get("/events", host=LAB_HOST).json() == []
    assert "provarmor_manager_events_rejected_total 1.0" in manager.client.get("/metrics").text
    # the same sequence, fixed, is then accepted
    fixed = manager.upload(agent_id, credential, sequence=4, body=b"".join(lab_lines[:3]))
    assert fixed.json()["duplicate"] is False


def test_event_of_another_host_is_400(manager, lab_lines):
    agent_id, credential = manager.enroll(host_id="not-the-lab-host")
    answer = manager.upload(agent_id, credential, sequence=1, body=lab_lines[0])
    assert answer.status_code == 400
    assert answer.json()["field"] == "batch:1"


@pytest.mark.parametrize(
    ("header", "value"), [("X-Batch-Sequence", "0"), ("X-Batch-Sequence", "x"), (None, None)]
)
def test_bad_sequence_header_is_400(manager, header, value):
    agent_id, credential = manager.enroll()
    headers = manager.headers(credential) | ({header: value} if header else {})
    answer = manager.client.post(f"/api/v1/agents/{agent_id}/batches", content=b"", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["field"] == "X-Batch-Sequence"


def test_lab_capture_makes_incidents_with_a_traceable_root_cause(manager, lab_lines):
    agent_id, credential = manager.enroll()
    for sequence, body in _lab_batches(lab_lines):
        answer = manager.upload(agent_id, credential, sequence=sequence, body=body)
        assert answer.status_code == 200, answer.text
    alerts = manager.get("/alerts", limit=1000).json()
    assert len(alerts) >= 5
    assert {alert["host_id"] for alert in alerts} == {LAB_HOST}
    assert manager.get("/alerts", level="critical", limit=1000).json() == [
        a for a in alerts if a["level"] == "critical"
    ]
    incidents = manager.get("/incidents").json()
    assert incidents, "the nodlink attack makes at least one incident"
    first = incidents[0]
    assert first["host_id"] == LAB_HOST
    assert first["status"] == "new"
    story = manager.get(f"/incidents/{first['id']}").json()
    assert story["id"] == first["id"]
    assert story["root_cause"]
    assert story["nodes"] and story["steps"] and story["techniques"]
    assert set(story["alert_ids"]) <= {alert["id"] for alert in alerts}
    root = story["root_cause"]
    node = manager.get(f"/graph/nodes/{root}", host=LAB_HOST).json()
    assert node["node"]["id"] == root
    assert node["out_total"] >= 1
    written = next(n["id"] for n in story["nodes"] if n["kind"] == "file")
    assert "/" in written  # file node ids hold a path: the route takes it whole
    assert manager.get(f"/graph/nodes/{written}", host=LAB_HOST).json()["node"]["id"] == written
    forward = manager.get(
        "/graph/trace", host=LAB_HOST, node=root, direction="forward", max_nodes=200
    ).json()
    assert forward["start"] == root
    assert forward["direction"] == "forward"
    assert any(edge["src"] == root for edge in forward["edges"])
    story_nodes = {n["id"] for n in story["nodes"]}
    assert story_nodes & {n["id"] for n in forward["nodes"]} - {root}
    backward = manager.get("/graph/trace", host=LAB_HOST, node=root, direction="backward").json()
    assert root in {n["id"] for n in backward["nodes"]}
    timeline = manager.get("/stats/timeline", bucket="minute").json()
    assert sum(bucket["alerts"] for bucket in timeline) == len(alerts)
    assert sum(bucket["incidents"] for bucket in timeline) == len(incidents)
    metrics = manager.client.get("/metrics").text
    assert 'provarmor_manager_uploads_total{result="accepted"} 5.0' in metrics
    assert f"provarmor_manager_events_total {float(len(lab_lines))}" in metrics


def test_incident_status_and_notes(manager, lab_lines):
    agent_id, credential = manager.enroll()
    for sequence, body in _lab_batches(lab_lines, size=1000):
        manager.upload(agent_id, credential, sequence=sequence, body=body)
    incident_id = manager.get("/incidents").json()[0]["id"]
    analyst = manager.token(Role.ANALYST)
    path = f"/api/v1/incidents/{incident_id}"
    changed = manager.client.patch(
        path, json={"status": "acknowledged"}, headers=manager.headers(analyst)
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "acknowledged"
    note = manager.client.post(
        f"{path}/notes", json={"text": "sh from the web app"}, headers=manager.headers(analyst)
    )
    assert note.status_code == 201
    story = manager.get(f"/incidents/{incident_id}").json()
    assert story["status"] == "acknowledged"
    assert [n["text"] for n in story["notes"]] == ["sh from the web app"]
    assert story["status_changes"][0]["old"] == "new"
    assert story["status_changes"][0]["new"] == "acknowledged"
    assert manager.get("/incidents", status="acknowledged").json()[0]["id"] == incident_id
    assert manager.get("/incidents", status="new").json() == []
    bad = manager.client.patch(path, json={"status": "closed"}, headers=manager.headers(analyst))
    assert bad.status_code == 400
    assert bad.json()["field"] == "status"
    missing = manager.client.patch(
        "/api/v1/incidents/inc-nope", json={"status": "resolved"}, headers=manager.headers(analyst)
    )
    assert missing.status_code == 404


def test_event_search(manager, lab_lines):
    agent_id, credential = manager.enroll()
    for sequence, body in _lab_batches(lab_lines, size=1000):
        assert manager.upload(agent_id, credential, sequence=sequence, body=body).status_code == 200
    events = [json.loads(line) for line in lab_lines]
    base64_runs = [e for e in events if "base64" in e["process"].get("command_line", "").lower()]
    found = manager.get("/events", q="BASE64", limit=1000).json()
    assert len(found) >= len(base64_runs) > 0
    process = events[10]["process"]["entity_id"]
    by_process = manager.get("/events", process=process, limit=1000).json()
    assert len(by_process) == sum(e["process"]["entity_id"] == process for e in events)
    middle = sorted(e["@timestamp"] for e in events)[3 * len(events) // 4]
    later = manager.get("/events", since=str(middle), limit=1000).json()
    assert len(later) == sum(e["@timestamp"] >= middle for e in events)
    assert all(e["timestamp"] >= middle for e in later)
    assert manager.get("/events", since="yesterday").status_code == 400
    assert manager.get("/events", limit=0).json()["field"] == "limit"


def test_status_report_shows_on_the_host(manager):
    agent_id, credential = manager.enroll(host_id="h-status")
    report = {"sensor": "ebpf", "healthy": False, "blind_reason": "drops", "drops": {"kernel": 7}}
    answer = manager.client.post(
        f"/api/v1/agents/{agent_id}/status", json=report, headers=manager.headers(credential)
    )
    assert answer.status_code == 204
    host = manager.get("/hosts/h-status").json()
    status = host["agents"][0]["status"]
    assert status["sensor"] == "ebpf"
    assert status["drops"] == {"kernel": 7}
    assert status["healthy"] is False
    assert manager.get("/hosts/nope").status_code == 404


def test_rules_health_and_docs(manager):
    rules = manager.get("/rules").json()
    assert len(rules) > 50
    assert all(rule["level"] and rule["title"] for rule in rules)
    assert any("T1059.004" in rule["techniques"] for rule in rules)
    assert manager.client.get("/healthz").json()["status"] == "ok"
    spec = manager.client.get("/openapi.json").json()
    assert "/api/v1/agents/{agent_id}/batches" in spec["paths"]
    assert manager.client.get("/docs").status_code == 200
    unknown = manager.client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]
