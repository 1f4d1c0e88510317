"""One incident per attack on a real recording with benign background activity: the runner of
the background work does not join the attack, and the ssh login on the second host joins the
ssh client's campaign through the connection (client end -> accept)."""

from __future__ import annotations

import functools
from pathlib import Path

import msgspec

from provarmor.detection.engine import detect
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.graph.builder import GraphBuilder
from provarmor.graph.store import MemoryGraphStore
from provarmor.investigation.incidents import IncidentEngine, IncidentRule
from provarmor.model.alert import Alert
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "data" / "investigation" / "credential-theft-lateral-s1"
RULES = ROOT / "src" / "provarmor" / "data" / "rules"
CLIENT_END = "sock:10.213.0.1:40388"
"""The attacker's ssh -i (pid 9045) to the second host's sshd (pid 8832)."""


@functools.cache
def _events() -> tuple[Event, ...]:
    path = FIXTURE / "events.ndjson.gz"
    return tuple(read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext()))


@functools.cache
def _fixture() -> tuple[MemoryGraphStore, tuple[Alert, ...]]:
    events = _events()
    builder = GraphBuilder()
    store = MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True))
    detector, _report = SigmaDetector.from_paths([RULES])
    return store, tuple(detect([detector], events))


def _attacker() -> set[str]:
    labels = msgspec.json.decode((FIXTURE / "entity-labels.json").read_bytes())
    return set(labels["processes"])


def _pid_of(store: MemoryGraphStore, node_id: str) -> int:
    node = store.node(node_id)
    assert node is not None
    return node.pid


def test_client_end_of_the_ssh_connection_links_client_and_server() -> None:
    store, _ = _fixture()
    into = store.in_edges(CLIENT_END)
    out = store.out_edges(CLIENT_END)
    assert (9045, "connection") in [(_pid_of(store, e.src), e.action) for e in into]
    served = [(_pid_of(store, e.dst), e.action) for e in out]
    # the listener accepted it; its session processes then received from the same end
    assert served[0] == (8832, "accept")
    assert (9046, "recv") in served
    connect = next(e for e in into if e.action == "connection")
    assert connect.first_ts <= out[0].first_ts


def test_attack_is_one_incident_across_both_hosts_without_the_background() -> None:
    store, signals = _fixture()
    engine = IncidentEngine(store, rule=IncidentRule(min_score=1e-9))
    engine.add_signals(signals)
    attacker = _attacker()
    true = [i for i in engine.incidents() if {n.id for n in i.nodes} & attacker]
    assert len(true) == 1
    incident = true[0]
    processes = {n.id for n in incident.nodes if n.kind == "process"}
    # measured: 56 of 56 processes are the attacker's; 56 of the 58 attacker processes
    assert len(processes & attacker) / len(processes) >= 0.95
    assert len(processes & attacker) / len(attacker) >= 0.9
    pids = {n.pid for n in incident.nodes if n.kind == "process"}
    assert 9084 in pids  # the sshd session on the second host
    assert 8720 not in pids  # the background workload runner
    runner_children = {
        e.dst for e in store.out_edges(next(n for n in store.nodes if _is_runner(store, n)))
    }
    assert not runner_children & processes - attacker
    found = {t.id for t in incident.techniques}
    assert {"T1021.004", "T1059.006", "T1071.001", "T1018", "T1003.008"} <= found
    assert len(incident.nodes) <= 100
    assert "10.213.0.238:22" in incident.contacted_endpoints
    # the connection's client end is in the graph (the link), not among the contacted
    assert incident.node(CLIENT_END) is not None
    assert CLIENT_END.removeprefix("sock:") not in incident.contacted_endpoints


def _is_runner(store: MemoryGraphStore, node_id: str) -> bool:
    node = store.node(node_id)
    return node is not None and node.pid == 8720
