"""Entities an alert names, and correlation hits from events."""

from __future__ import annotations

import msgspec

from provarmor.detection.sigma.alerts import event_entities, event_hit
from provarmor.detection.sigma.records import Record
from provarmor.model.actions import Action
from provarmor.model.event import Endpoint, ProcessRef, Target
from provarmor.testing.factories import make_event


def test_entities_of_file_network_and_ptrace_events():
    rename = make_event(Action.RENAME, pid=5, path="/b", original_path="/a")
    assert event_entities(rename) == (("test-host-p5",), ("/b", "/a"), ())
    connect = make_event(Action.CONNECT, pid=6, ip="2001:db8::1", port=443)
    assert event_entities(connect)[2] == ("[2001:db8::1]:443",)
    named = msgspec.structs.replace(
        connect, destination=Endpoint(ip="203.0.113.1", port=80, domain="x.example")
    )
    assert event_entities(named)[2] == ("203.0.113.1:80", "x.example")
    ptrace = msgspec.structs.replace(
        make_event(Action.PTRACE, pid=7),
        target=Target(process=ProcessRef(entity_id="test-host-p8", pid=8)),
    )
    assert event_entities(ptrace)[0] == ("test-host-p7", "test-host-p8")


def test_hit_values_come_from_the_record_then_the_event():
    event = make_event(Action.EXEC, exe="/usr/bin/id", ts=9)
    hit = event_hit("r", event, record=Record({"type": "EXECVE"}))
    assert hit.value("type") == "EXECVE"
    assert hit.value("Image") == "/usr/bin/id"
    assert hit.value("Nope") is None
    assert (hit.timestamp, hit.host_id, hit.event_ids) == (9, "test-host", (event.event.id,))
