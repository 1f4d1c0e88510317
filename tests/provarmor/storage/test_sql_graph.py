"""Behaviour every SQL graph store shares: each test runs on SQLite and on PostgreSQL."""

import pytest

from provarmor.graph.builder import GraphBuilder, GraphDelta
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.graph.trace import Direction, trace_from_event
from provarmor.model.actions import Action
from provarmor.model.errors import StorageError
from provarmor.testing.factories import entity, make_event


def fill(store, events, *, meta=None):
    builder = GraphBuilder(next_edge_id=store.next_edge_id())
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True), meta=meta)


def process(node_id, **values):
    return Node(
        id=node_id, kind=NodeKind.PROCESS, host="h", **{"first_ts": 5, "last_ts": 5, **values}
    )


def test_round_trip_and_queries(graph_store):
    store = graph_store()
    fill(
        store,
        [
            make_event(Action.EXEC, pid=2, ppid=1, exe="/usr/bin/curl", ts=1),
            make_event(
                Action.WRITE, pid=2, exe="/usr/bin/curl", path="/tmp/x", ts=2, event_id="w1"
            ),
            make_event(
                Action.WRITE, pid=2, exe="/usr/bin/curl", path="/tmp/x", ts=3, event_id="w2"
            ),
        ],
    )
    node = store.node(entity(2))
    assert node is not None and node.executable == "/usr/bin/curl"
    (edge,) = store.in_edges("file:test-host:/tmp/x")
    assert (edge.count, edge.first_ts, edge.last_ts, edge.last_event) == (2, 2, 3, "w2")
    assert [e.action for e in store.out_edges(entity(1))] == ["fork"]
    found = store.event_edge("w1")
    assert found is not None and found[0].id == edge.id and found[1] == 2
    assert [n.id for n in store.find_nodes("tmp/x")] == ["file:test-host:/tmp/x"]
    assert [n.id for n in store.find_nodes("TMP/X")] == ["file:test-host:/tmp/x"]
    assert store.find_nodes("100%_") == []
    stats = store.stats()
    assert stats.nodes_by_kind == {"process": 2, "file": 2}
    assert stats.edges_by_action["write"] == 2
    assert (stats.events_indexed, stats.first_ts, stats.last_ts) == (3, 1, 3)


def test_second_batch_continues_edge_ids_and_merges_nodes(graph_store):
    store = graph_store()
    fill(store, [make_event(Action.WRITE, pid=2, path="/a", ts=5)])
    store.close()
    store = graph_store()
    fill(store, [make_event(Action.WRITE, pid=2, path="/a", ts=1, exe="")])
    assert store.edge_count() == 2
    node = store.node(entity(2))
    assert node is not None and (node.first_ts, node.last_ts) == (1, 5)
    assert node.executable == "/usr/bin/bash"  # an empty later value never erases a known one
    result = trace_from_event(
        store, store.out_edges(entity(2))[0].first_event, direction=Direction.FORWARD
    )
    assert result is not None and "file:test-host:/a" in result.nodes


def test_node_upsert_keeps_known_values_and_widens_the_span(graph_store):
    store = graph_store()
    first = process("p", first_ts=5, last_ts=6, label="bash", pid=7, user="root", exited=True)
    store.apply(GraphDelta(nodes=[first]))
    store.apply(GraphDelta(nodes=[process("p", first_ts=3, last_ts=4, command_line="bash -i")]))
    store.apply(GraphDelta(nodes=[process("p", first_ts=8, last_ts=9, label="sh")]))
    node = store.node("p")
    assert node is not None
    assert (node.first_ts, node.last_ts, node.label, node.pid) == (3, 9, "sh", 7)
    assert (node.user, node.command_line, node.exited) == ("root", "bash -i", True)


def test_one_node_twice_in_a_batch_is_merged_in_order(graph_store):
    store = graph_store()
    store.apply(
        GraphDelta(
            nodes=[
                process("p", first_ts=5, last_ts=5, label="bash", pid=7),
                process("p", first_ts=2, last_ts=9, label="", user="alice"),
            ]
        )
    )
    node = store.node("p")
    assert node is not None
    assert (node.first_ts, node.last_ts, node.label, node.pid, node.user) == (
        2,
        9,
        "bash",
        7,
        "alice",
    )


def test_meta_is_written_with_the_batch(graph_store):
    store = graph_store()
    assert store.meta("spool.position") is None
    fill(store, [make_event(Action.EXEC, pid=2, ts=1)], meta={"spool.position": "3:120"})
    fill(store, [make_event(Action.EXEC, pid=3, ts=2)], meta={"spool.position": "3:240"})
    store.close()
    store = graph_store()
    assert store.meta("spool.position") == "3:240"
    assert store.meta("format_version") == "1"


def test_a_failed_batch_writes_nothing_and_the_store_goes_on(graph_store):
    store = graph_store()
    dangling = Edge(id=1, src="p", dst="nowhere", action="write", first_ts=1, last_ts=1)
    with pytest.raises(StorageError, match="unknown node 'nowhere'"):
        store.apply(GraphDelta(nodes=[process("p")], new_edges=[dangling]), meta={"pos": "1"})
    assert store.node("p") is None and store.meta("pos") is None
    store.apply(GraphDelta(nodes=[process("q")]), meta={"pos": "2"})
    assert store.node("q") is not None and store.meta("pos") == "2"


def test_updates_gaps_and_incomplete_edges(graph_store):
    store = graph_store()
    edge = Edge(id=10, src="p", dst="q", action="ptrace", first_ts=5, last_ts=5)
    store.apply(GraphDelta(nodes=[process("p"), process("q")], new_edges=[edge]))
    grown = Edge(
        id=10,
        src="p",
        dst="q",
        action="ptrace",
        first_ts=5,
        last_ts=8,
        count=3,
        first_event="e1",
        last_event="e3",
        incomplete=True,
    )
    store.apply(GraphDelta(updated_edges=[grown], gaps=[("h", 7, 12)], event_edges=[("e3", 10, 8)]))
    (stored,) = store.out_edges("p")
    assert stored == Edge(
        id=10,
        src="p",
        dst="q",
        action="ptrace",
        first_ts=5,
        last_ts=8,
        count=3,
        first_event="",
        last_event="e3",
        incomplete=True,
    )
    assert store.event_edge("e3") == (stored, 8)
    assert store.stats().gaps == 1
    assert store.next_edge_id() == 11


def test_unknown_things_are_none_or_empty(graph_store):
    store = graph_store()
    assert store.next_edge_id() == 1
    assert store.node("nope") is None
    assert store.in_edges("nope") == [] and store.out_edges("nope") == []
    assert store.event_edge("nope") is None
    assert store.last_edge(action="connect") is None
    assert store.find_nodes("nope") == []
    assert store.stats().nodes_by_kind == {} and store.stats().first_ts == 0
    assert list(store.iter_nodes()) == [] and list(store.iter_edges()) == []


def test_ingest_record_is_kept_and_replaced(graph_store):
    store = graph_store()
    assert store.ingested("d1") is None
    store.record_ingest(
        digest="d1", source="a.log", format="auditd", events=5, rejected=1, finished_at=10
    )
    store.record_ingest(
        digest="d1", source="b.log", format="auditd", events=6, rejected=0, finished_at=11
    )
    assert store.ingested("d1") == ("b.log", 6)


def test_find_nodes_exact_id_first_then_text_in_time_order(graph_store):
    store = graph_store()
    nodes = [
        process("p1", first_ts=30, label="/usr/bin/ssh"),
        process("p2", first_ts=10, command_line="ssh -p 22 host"),
        Node(id="f", kind=NodeKind.FILE, host="h", first_ts=20, last_ts=20, path="/etc/ssh/x"),
    ]
    store.apply(GraphDelta(nodes=nodes))
    assert [n.id for n in store.find_nodes("ssh")] == ["p2", "f", "p1"]
    assert [n.id for n in store.find_nodes("ssh", limit=1)] == ["p2"]
    assert [n.id for n in store.find_nodes("p1")] == ["p1"]


def test_find_nodes_prefers_the_file_a_path_names_exactly(graph_store):
    store = graph_store()
    nodes = [
        process("p1", first_ts=10, command_line="chmod +x /tmp/x/payload"),
        Node(id="f", kind=NodeKind.FILE, host="h", first_ts=20, last_ts=20, path="/tmp/x/payload"),
        Node(id="g", kind=NodeKind.FILE, host="h", first_ts=30, last_ts=30, path="/tmp/x/payload2"),
    ]
    store.apply(GraphDelta(nodes=nodes))
    assert [n.id for n in store.find_nodes("/tmp/x/payload")] == ["f"]
    assert [n.id for n in store.find_nodes("x/payload")] == ["p1", "f", "g"]


def test_iterate_everything_and_the_last_edge(graph_store):
    store = graph_store()
    fill(
        store,
        [
            make_event(Action.CONNECT, pid=2, ts=5, ip="127.0.0.1", port=80, event_id="c1"),
            make_event(Action.EXEC, pid=3, ppid=2, ts=7),
            make_event(Action.CONNECT, pid=3, ts=9, ip="127.0.0.1", port=443, event_id="c2"),
        ],
    )
    nodes = list(store.iter_nodes())
    assert [n.first_ts for n in nodes] == sorted(n.first_ts for n in nodes)
    assert {n.id for n in nodes} >= {entity(2), entity(3), "sock:127.0.0.1:443"}
    edges = list(store.iter_edges())
    assert [e.id for e in edges] == list(range(1, store.edge_count() + 1))
    last = store.last_edge(action="connect")
    assert last is not None and (last.last_event, last.dst) == ("c2", "sock:127.0.0.1:443")
