"""The incident routes on the real lab capture: list and filters, the full story, analyst
status changes and notes."""

import dataclasses
import json

from provarmor.manager.auth import Role
from provarmor.manager.store import BatchCommit

LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def test_lab_incident_story_ties_back_to_its_alerts(loaded):
    alerts = {alert["id"] for alert in loaded.get("/alerts", limit=1000).json()}
    incidents = loaded.get("/incidents").json()
    assert incidents, "the nodlink attack makes at least one incident"
    first = incidents[0]
    assert first["host_id"] == LAB_HOST
    assert first["status"] == "new"
    assert first["first_ts"] <= first["last_ts"]
    story = loaded.get(f"/incidents/{first['id']}").json()
    assert story["id"] == first["id"]
    assert story["severity"] == first["severity"]
    assert story["root_cause"] in {node["id"] for node in story["nodes"]}
    assert story["steps"] and story["techniques"]
    assert story["alert_ids"] and set(story["alert_ids"]) <= alerts
    assert story["notes"] == []
    assert story["status_changes"] == []
    assert loaded.get("/incidents", severity=first["severity"]).json()[0]["id"] == first["id"]
    assert loaded.get("/incidents", host="other-host").json() == []
    assert loaded.get("/incidents/inc-nope").status_code == 404


def test_incident_status_and_notes(loaded):
    incident_id = loaded.get("/incidents").json()[0]["id"]
    analyst = loaded.token(Role.ANALYST)
    path = f"/api/v1/incidents/{incident_id}"
    changed = loaded.client.patch(
        path, json={"status": "acknowledged"}, headers=loaded.headers(analyst)
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "acknowledged"
    assert changed.json()["id"] == incident_id
    note = loaded.client.post(
        f"{path}/notes", json={"text": "sh from the web app"}, headers=loaded.headers(analyst)
    )
    assert note.status_code == 201
    assert note.json()["incident_id"] == incident_id
    story = loaded.get(f"/incidents/{incident_id}").json()
    assert story["status"] == "acknowledged"
    assert [n["text"] for n in story["notes"]] == ["sh from the web app"]
    assert story["notes"][0]["author"] == note.json()["author"]
    assert story["status_changes"][0]["old"] == "new"
    assert story["status_changes"][0]["new"] == "acknowledged"
    assert loaded.get("/incidents", status="acknowledged").json()[0]["id"] == incident_id
    assert loaded.get("/incidents", status="new").json() == []
    bad = loaded.client.patch(path, json={"status": "closed"}, headers=loaded.headers(analyst))
    assert bad.status_code == 400
    assert bad.json()["field"] == "status"
    empty = loaded.client.post(f"{path}/notes", json={"text": ""}, headers=loaded.headers(analyst))
    assert empty.status_code == 400


def test_the_id_of_a_merged_incident_answers_with_the_incident_it_merged_into(loaded):
    (summary, *_) = loaded.get("/incidents").json()
    row = loaded.store.incident(summary["id"])
    story = json.loads(row.json)
    story["merged_ids"] = [*story.get("merged_ids", []), "inc-older-tag"]
    merged = dataclasses.replace(row, json=json.dumps(story), version=row.version + 1)
    agent_id, _ = loaded.enroll(host_id="merge-host")
    assert loaded.store.commit_batch(
        BatchCommit(agent_id=agent_id, sequence=1, received_ns=1, incidents=[merged])
    )
    answer = loaded.get("/incidents/inc-older-tag")
    assert answer.status_code == 200
    assert answer.json()["id"] == summary["id"]
    assert answer.json()["merged_from"] == "inc-older-tag"
    assert "merged_from" not in loaded.get(f"/incidents/{summary['id']}").json()
    assert loaded.get("/incidents/inc-never-was").status_code == 404


def test_unknown_incident_is_404_for_every_route(manager):
    headers = manager.headers(manager.token(Role.ANALYST))
    missing = manager.client.patch(
        "/api/v1/incidents/inc-nope", json={"status": "resolved"}, headers=headers
    )
    assert missing.status_code == 404
    assert missing.json() == {"error": "unknown incident", "field": "incident_id"}
    note = manager.client.post(
        "/api/v1/incidents/inc-nope/notes", json={"text": "x"}, headers=headers
    )
    assert note.status_code == 404
    assert manager.get("/incidents/inc-nope").status_code == 404
    assert manager.get("/incidents").json() == []
    assert manager.client.get("/api/v1/incidents").status_code == 401
