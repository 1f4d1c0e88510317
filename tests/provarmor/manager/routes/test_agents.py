"""The agent routes through the API: enrolment, batch upload (limits, gzip, idempotence by
sequence, rejection of bad events), the acknowledged sequence and status reports."""

import gzip
import json

from provarmor.bus.credentials import BusAccess, Trust
from provarmor.bus.message import subject_for
from provarmor.bus.nkeys import NKey, jwt_claims
from provarmor.manager.auth import Role
from provarmor.manager.routes.tokens import create_token
from provarmor.testing.nats import free_port

LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


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
    expired = create_token(manager.store, role=Role.ENROLL, valid_ns=1)  # gone in 1 ns
    answer = manager.client.post("/api/v1/enroll", json={"token": expired.token, "host_id": "h1"})
    assert answer.status_code == 401


def test_enrolment_with_a_wrong_token_is_401(manager):
    wrong = ["pa.0123456789abcdef." + "0" * 64, "not-a-token", "x", manager.admin]
    for token in wrong:  # well formed but unknown, malformed, and a user token
        answer = manager.client.post("/api/v1/enroll", json={"token": token, "host_id": "h"})
        assert answer.status_code == 401, token
        assert answer.json()["field"] == "token"


def test_enrolment_refuses_a_bad_host_id_and_keeps_the_token(manager):
    token = manager.token(Role.ENROLL)
    for host_id in ("", "a host", "h/../x", "x" * 201):
        answer = manager.client.post("/api/v1/enroll", json={"token": token, "host_id": host_id})
        assert answer.status_code == 400, host_id
        assert answer.json()["field"] == "host_id"
    good = manager.client.post("/api/v1/enroll", json={"token": token, "host_id": "h-1"})
    assert good.status_code == 201


def test_wrong_secret_of_a_real_token_is_401(manager):
    agent_id, credential = manager.enroll()
    forged = credential[:-4] + ("0000" if not credential.endswith("0000") else "1111")
    answer = manager.upload(agent_id, forged, sequence=1, body=b"")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert manager.get("/hosts", token=forged).status_code == 401


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


def test_acked_sequence_is_where_the_spool_resumes(manager, lab_lines):
    agent_id, credential = manager.enroll()
    path = f"/api/v1/agents/{agent_id}/batches/acked"
    assert manager.client.get(path, headers=manager.headers(credential)).json() == {
        "acked_sequence": 0
    }
    manager.upload(agent_id, credential, sequence=7, body=b"".join(lab_lines[:7]))
    answer = manager.client.get(path, headers=manager.headers(credential))
    assert answer.status_code == 200
    assert answer.json() == {"acked_sequence": 7}
    assert manager.client.get(path, headers=manager.headers(manager.admin)).status_code == 403


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
    ten = small.upload(agent_id, credential, sequence=10, body=b"".join(lab_lines[:10]))
    assert ten.json()["events"] == 10


def test_gzip_batch_is_accepted(manager, lab_lines):
    agent_id, credential = manager.enroll()
    body = gzip.compress(b"".join(lab_lines[:50]))
    answer = manager.upload(
        agent_id, credential, sequence=50, body=body, **{"Content-Encoding": "gzip"}
    )
    assert answer.status_code == 200
    assert answer.json()["events"] == 50


def test_bad_encodings_are_refused_and_store_nothing(manager, lab_lines):
    agent_id, credential = manager.enroll()
    plain = b"".join(lab_lines[:5])
    brotli = manager.upload(
        agent_id, credential, sequence=5, body=plain, **{"Content-Encoding": "br"}
    )
    assert brotli.status_code == 415
    assert brotli.json()["field"] == "Content-Encoding"
    gzip_header = {"Content-Encoding": "gzip"}
    garbage = manager.upload(agent_id, credential, sequence=5, body=plain, **gzip_header)
    assert garbage.status_code == 400
    assert garbage.json()["error"].startswith("bad gzip body")
    cut = gzip.compress(plain)[:-12]
    truncated = manager.upload(agent_id, credential, sequence=5, body=cut, **gzip_header)
    assert truncated.status_code == 400
    assert truncated.json() == {"error": "truncated gzip body", "field": "body"}
    assert manager.get("/hosts").json()[0]["events"] == 0


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


def test_bad_sequence_header_is_400(manager):
    agent_id, credential = manager.enroll()
    path = f"/api/v1/agents/{agent_id}/batches"
    for sequence in ("0", "x", "-3", None):
        extra = {"X-Batch-Sequence": sequence} if sequence is not None else {}
        headers = manager.headers(credential) | extra
        answer = manager.client.post(path, content=b"", headers=headers)
        assert answer.status_code == 400, sequence
        assert answer.json()["field"] == "X-Batch-Sequence"


def test_status_report_is_stored_with_the_agent(manager):
    agent_id, credential = manager.enroll(host_id="h-status")
    report = {"sensor": "ebpf", "healthy": False, "blind_reason": "drops", "drops": {"kernel": 7}}
    answer = manager.client.post(
        f"/api/v1/agents/{agent_id}/status", json=report, headers=manager.headers(credential)
    )
    assert answer.status_code == 204
    status = manager.get("/hosts/h-status").json()["agents"][0]["status"]
    assert status == {
        "sensor": "ebpf",
        "healthy": False,
        "blind_reason": "drops",
        "counters": {},
        "drops": {"kernel": 7},
    }


def test_whole_lab_capture_is_accepted_and_counted(loaded, lab_lines):
    metrics = loaded.client.get("/metrics").text
    assert 'provarmor_manager_uploads_total{result="accepted"} 5.0' in metrics
    assert f"provarmor_manager_events_total {float(len(lab_lines))}" in metrics
    alerts = len(loaded.get("/alerts", limit=1000).json())
    assert f"provarmor_manager_alerts_total {float(alerts)}" in metrics
    assert loaded.get("/hosts").json()[0]["events"] == len(lab_lines)


def test_nul_characters_in_uploaded_events_become_replacement_characters(manager, lab_lines):
    agent_id, credential = manager.enroll()
    event = json.loads(lab_lines[5])
    event["process"]["command_line"] = "sh -c 'a\x00b' \\u0000"
    body = json.dumps(event).encode()
    assert b"\\u0000" in body
    answer = manager.upload(agent_id, credential, sequence=1, body=body)
    assert answer.status_code == 200, answer.text
    found = manager.get("/events", q="sh -c 'a").json()
    assert [row["command_line"] for row in found] == ["sh -c 'a\ufffdb' \\u0000"]
    later = manager.upload(agent_id, credential, sequence=2, body=b"".join(lab_lines[6:20]))
    assert later.status_code == 200, later.text


def test_enrolment_without_a_bus_answers_version_2_with_no_bus(manager):
    answer = manager.client.post(
        "/api/v1/enroll", json={"token": manager.token(Role.ENROLL), "host_id": "h1"}
    )
    assert answer.status_code == 201
    assert answer.json()["version"] == 2
    assert answer.json()["bus"] is None


def test_cluster_enrolment_hands_out_the_bus_and_credentials_for_the_agents_own_subjects(
    make_manager, tmp_path
):
    trust = Trust.generate()
    signing = tmp_path / "signing.json"
    signing.write_text(trust.signer().to_json())
    away = f"tls://127.0.0.1:{free_port()}"  # the bus is away: enrolment still answers
    cluster = make_manager(tmp_path, bus_url=away, bus_signing_key=signing)
    publisher = cluster.client.app.state.context.bus_commands.publisher
    publisher.connect_timeout_s = publisher.timeout_s = 1.0  # the try on the away bus
    answer = cluster.client.post(
        "/api/v1/enroll", json={"token": cluster.token(Role.ENROLL), "host_id": LAB_HOST}
    )
    assert answer.status_code == 201, answer.text
    data = answer.json()
    bus = BusAccess.from_dict(data["bus"], location="answer")
    assert bus.url == away
    claims = jwt_claims(bus.credentials.jwt)
    assert claims["iss"] == trust.signing_key.public
    consumer = f"PROVARMOR_COMMANDS.agent-{data['agent_id']}"
    assert claims["nats"]["pub"]["allow"] == [
        subject_for(LAB_HOST),
        f"provarmor.results.{data['agent_id']}",
        "$JS.API.STREAM.INFO.PROVARMOR_EVENTS",
        f"$JS.API.CONSUMER.INFO.{consumer}",
        f"$JS.API.CONSUMER.MSG.NEXT.{consumer}",
        f"$JS.ACK.{consumer}.>",
    ]
    assert claims["nats"]["sub"]["allow"] == [
        f"provarmor.commands.{data['agent_id']}",
        f"_INBOX.{data['agent_id']}.>",
    ]
    assert claims["sub"] == NKey.from_seed(bus.credentials.seed).public
