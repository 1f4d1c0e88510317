"""The event search route over the uploaded lab capture: by host, process, text and time."""

import json

from provarmor.manager.auth import Role

LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def test_event_search(loaded, lab_lines):
    events = [json.loads(line) for line in lab_lines]
    base64_runs = [e for e in events if "base64" in e["process"].get("command_line", "").lower()]
    found = loaded.get("/events", q="BASE64", limit=1000).json()
    assert len(found) >= len(base64_runs) > 0
    process = events[10]["process"]["entity_id"]
    by_process = loaded.get("/events", process=process, limit=1000).json()
    assert len(by_process) == sum(e["process"]["entity_id"] == process for e in events)
    assert {row["process"] for row in by_process} == {process}
    middle = sorted(e["@timestamp"] for e in events)[3 * len(events) // 4]
    later = loaded.get("/events", since=str(middle), limit=1000).json()
    assert len(later) == sum(e["@timestamp"] >= middle for e in events)
    assert all(e["timestamp"] >= middle for e in later)
    earlier = loaded.get("/events", until=str(middle), limit=1000).json()
    assert all(e["timestamp"] <= middle for e in earlier)
    assert loaded.get("/events", host="other-host").json() == []
    assert loaded.get("/events", since="yesterday").status_code == 400
    assert loaded.get("/events", limit=0).json()["field"] == "limit"


def test_an_event_row_carries_the_canonical_event(manager, lab_lines):
    agent_id, credential = manager.enroll()
    manager.upload(agent_id, credential, sequence=1, body=lab_lines[0])
    original = json.loads(lab_lines[0])
    [row] = manager.get("/events", token=manager.token(Role.ANALYST)).json()
    assert row["host"] == LAB_HOST
    assert row["event_id"] == original["event"]["id"]
    assert row["timestamp"] == original["@timestamp"]
    assert row["process"] == original["process"]["entity_id"]
    assert row["event"]["event"]["id"] == original["event"]["id"]
    assert row["event"]["process"]["entity_id"] == original["process"]["entity_id"]


def test_text_longer_than_200_is_refused(manager):
    answer = manager.get("/events", q="x" * 201)
    assert answer.status_code == 400
    assert answer.json()["field"] == "query.q"
    assert manager.client.get("/api/v1/events").status_code == 401


def _fields(row):
    return " ".join((row["executable"], row["command_line"], row["file_path"], row["remote"]))


def test_percent_and_underscore_in_search_text_match_literally(loaded, lab_lines):
    everything = len(lab_lines)
    for text in ("%", "_", "%_%", "s_s", "\\"):
        found = loaded.get("/events", q=text, limit=1000).json()
        assert len(found) < min(everything, 1000), text  # not a wildcard
        assert all(text in _fields(row).lower() for row in found), text
    assert loaded.get("/events", q="_", limit=1000).json()  # the capture has "_" to find
