"""Behaviour every SQL graph store shares: each test runs on SQLite and on PostgreSQL."""

import pytest

from provarmor.graph.builder import GraphBuilder, GraphDelta
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.graph.store import PruneCursor
from provarmor.graph.trace import Direction, trace_from_event
from provarmor.model.actions import Action
from provarmor.model.errors import StorageError
from provarmor.storage.dialect import IN_KEYS
from provarmor.storage.sql_graph import FORMAT_VERSION
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
    assert store.meta("format_version") == str(FORMAT_VERSION)


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


def test_nodes_of_reads_the_stored_nodes_among_ids_at_once(graph_store):
    store = graph_store()
    wanted = [f"p{i}" for i in range(IN_KEYS + 5)]  # more than one statement's keys
    store.apply(GraphDelta(nodes=[process(node_id, label=node_id) for node_id in wanted]))
    found = store.nodes_of([*wanted, "nope", "p1"])
    assert sorted(found) == sorted(wanted)
    assert all(found[node_id] == store.node(node_id) for node_id in wanted)
    assert store.nodes_of([]) == {}


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


# retention


def _edge(edge_id, src, dst, ts):
    return Edge(
        id=edge_id,
        src=src,
        dst=dst,
        action="write",
        first_ts=ts,
        last_ts=ts,
        first_event=f"e{edge_id}",
        last_event=f"e{edge_id}",
    )


def _chain(store, count):
    """``count`` processes p0..p(count-1), each writing file f<i> at time i*10 (its event
    indexed), and two sensor gaps."""
    _chain_more(store, 0, count)
    store.apply(GraphDelta(gaps=[("h", 5, 3), ("h", 500, 1)]))


def _chain_more(store, start, count, *, step=10):
    """Processes p<start>.. each writing its file f<i> at time i*step (event indexed)."""
    nodes = []
    for i in range(start, start + count):
        nodes.append(process(f"p{i}", first_ts=i * step, last_ts=i * step))
        nodes.append(
            Node(id=f"f{i}", kind=NodeKind.FILE, host="h", first_ts=i * step, last_ts=i * step)
        )
    edges = [_edge(i + 1, f"p{i}", f"f{i}", i * step) for i in range(start, start + count)]
    events = [(f"e{e.id}", e.id, e.first_ts) for e in edges]
    store.apply(GraphDelta(nodes=nodes, new_edges=edges, event_edges=events))


def _prune_all(store, before_ts, *, keep=frozenset(), rows=3):
    cursor = PruneCursor()
    steps = []
    while True:
        steps.append(store.prune(before_ts, keep=keep, rows=rows, cursor=cursor))
        if steps[-1].done:
            return steps


def test_prune_deletes_old_edges_their_index_and_then_their_nodes(graph_store):
    store = graph_store()
    _chain(store, 10)
    steps = _prune_all(store, 45, rows=2)  # edges at 0, 10, .., 40 go
    assert sum(step.edges for step in steps) == 5
    assert sum(step.events for step in steps) == 5
    assert sorted(name for step in steps for name in step.nodes) == sorted(
        [f"p{i}" for i in range(5)] + [f"f{i}" for i in range(5)]
    )
    assert sum(step.gaps for step in steps) == 1
    assert len(steps) > 3  # in batches of two
    assert store.edge_count() == 5
    assert store.node("p4") is None and store.node("p5") is not None
    assert store.event_edge("e4") is None and store.event_edge("e6") is not None
    assert store.stats().gaps == 1
    # deleted node ids are not served from the key cache: a new edge to p0 is refused
    with pytest.raises(StorageError, match="unknown node"):
        store.apply(GraphDelta(new_edges=[_edge(99, "p0", "f9", 200)]))


def test_prune_keeps_the_nodes_and_edges_of_kept_incidents(graph_store):
    store = graph_store()
    _chain(store, 6)
    steps = _prune_all(store, 1_000, keep=frozenset({"p1", "f1", "p2"}))
    assert store.edge_count() == 1  # p1 -> f1: both ends kept
    assert store.out_edges("p1")[0].dst == "f1"
    assert store.node("p2") is not None  # kept, though no edge is left
    assert {name for step in steps for name in step.nodes} == {
        *(f"p{i}" for i in (0, 3, 4, 5)),
        *(f"f{i}" for i in (0, 2, 3, 4, 5)),
    }


def test_a_node_an_edge_still_refers_to_is_kept(graph_store):
    store = graph_store()
    _chain(store, 2)
    store.apply(GraphDelta(new_edges=[_edge(3, "f0", "p1", 900)]))  # p1 reads f0, later
    _prune_all(store, 100)
    assert store.node("f0") is not None
    assert store.node("p0") is None
    assert store.edge_count() == 1


def test_size_cutoff_is_zero_under_the_bound_and_cuts_the_oldest_over_it(graph_store):
    store = graph_store()
    _chain(store, 200)
    assert store.size_cutoff(0) == 0
    assert store.size_cutoff(10**12) == 0
    bound = store._db.used_bytes() // 2
    half = store.size_cutoff(bound)
    assert 990 <= half <= 1010  # about the 100th of 200 edges, 10 apart
    _prune_all(store, half, rows=50)
    assert store.edge_count() < 105
    store.settle(bound)
    # what the pass ended at is the floor (PostgreSQL reuses the space in place, SQLite
    # frees whole pages only): a next pass cuts only what grows past it
    assert store.size_cutoff(bound) == 0
    _chain_more(store, 200, 100)
    assert store.size_cutoff(bound) > half


def test_a_builder_that_forgets_the_pruned_nodes_goes_on_storing(graph_store):
    store = graph_store()
    builder = GraphBuilder(next_edge_id=store.next_edge_id())
    for ts in (1, 2):
        builder.add(make_event(Action.WRITE, pid=2, exe="/bin/a", path="/tmp/a", ts=ts))
    store.apply(builder.drain(full=True))
    steps = _prune_all(store, 100)
    builder.forget([name for step in steps for name in step.nodes], edges_before=100)
    builder.add(make_event(Action.WRITE, pid=2, exe="/bin/a", path="/tmp/a", ts=200))
    store.apply(builder.drain(full=True))
    assert store.edge_count() == 1
    assert store.node(entity(2)) is not None
