from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.evaluation.dataset import load_dataset
from provarmor.graph.builder import BuilderLimits, GraphBuilder
from provarmor.graph.builder_tables import TablesChunk
from provarmor.graph.records import NodeKind
from provarmor.graph.store import MemoryGraphStore
from provarmor.graph.trace import Direction, trace
from provarmor.model.actions import Action
from provarmor.model.event import Endpoint
from provarmor.testing.factories import entity, make_event

DATA = Path(__file__).resolve().parents[2] / "data"


def build(events, **kwargs):
    builder = GraphBuilder(**kwargs)
    store = MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain())
    return builder, store


def test_edges_follow_information_flow():
    _, store = build(
        [
            make_event(Action.FORK, pid=2, ppid=1, ts=1),
            make_event(Action.OPEN, pid=2, path="/etc/passwd", ts=2),
            make_event(Action.WRITE, pid=2, path="/tmp/out", ts=3),
            make_event(Action.CONNECT, pid=2, ip="10.0.0.9", port=443, ts=4),
            make_event(Action.ACCEPT, pid=2, ip="127.0.0.1", port=5555, ts=5),
        ]
    )
    flows = {(e.src, e.dst, e.action) for e in store.edges.values()}
    assert flows == {
        (entity(1), entity(2), "fork"),
        ("file:test-host:/etc/passwd", entity(2), "open"),
        (entity(2), "file:test-host:/tmp/out", "write"),
        (entity(2), "sock:10.0.0.9:443", "connect"),
        ("sock:127.0.0.1:5555", entity(2), "accept"),
    }
    assert store.nodes["sock:10.0.0.9:443"].kind is NodeKind.SOCKET


def test_repeated_reads_merge_when_nothing_interleaves():
    builder, store = build([make_event(Action.READ, path="/a", ts=t) for t in range(1, 6)])
    (edge,) = store.edges.values()
    assert (edge.count, edge.first_ts, edge.last_ts) == (5, 1, 5)
    assert builder.counters.edges_merged == 4


def test_reads_do_not_merge_across_a_write_out_of_the_reader():
    # read /a, write /b, read /a: the second read happened after the write, so merging it
    # into the first would let a forward trace from /a wrongly reach /b through it... and
    # worse, lose that /b predates it. Xu et al.: no merge when the destination had an
    # outgoing flow in between.
    _, store = build(
        [
            make_event(Action.READ, path="/a", ts=1),
            make_event(Action.WRITE, path="/b", ts=2),
            make_event(Action.READ, path="/a", ts=3),
        ]
    )
    reads = [e for e in store.edges.values() if e.action == "read"]
    assert sorted((e.first_ts, e.last_ts) for e in reads) == [(1, 1), (3, 3)]


def test_writes_merge_across_unrelated_reads_of_other_files():
    _, store = build(
        [
            make_event(Action.WRITE, path="/out", ts=1),
            make_event(Action.WRITE, path="/out", ts=3),
        ]
    )
    assert [e.count for e in store.edges.values()] == [2]


def test_writes_do_not_merge_when_new_information_entered_the_writer():
    _, store = build(
        [
            make_event(Action.WRITE, path="/out", ts=1),
            make_event(Action.READ, path="/secret", ts=2),
            make_event(Action.WRITE, path="/out", ts=3),
        ]
    )
    writes = [e for e in store.edges.values() if e.action == "write"]
    assert len(writes) == 2


def test_exec_links_program_file_and_implies_fork_from_parent():
    _, store = build([make_event(Action.EXEC, pid=7, ppid=3, exe="/tmp/x", args=("/tmp/x", "-v"))])
    flows = {(e.src, e.dst, e.action) for e in store.edges.values()}
    assert ("file:test-host:/tmp/x", entity(7), "exec") in flows
    assert (entity(3), entity(7), "fork") in flows
    assert store.nodes[entity(7)].command_line == "/tmp/x -v"


def test_rename_links_old_and_new_path():
    _, store = build([make_event(Action.RENAME, path="/new", original_path="/old")])
    flows = {(e.src, e.dst) for e in store.edges.values()}
    assert ("file:test-host:/old", "file:test-host:/new") in flows
    assert (entity(100), "file:test-host:/new") in flows


def test_gap_marks_open_edges_incomplete_and_closes_them():
    from provarmor.model.event import Event, EventInfo, Host, Process

    gap = Event(
        timestamp=5,
        event=EventInfo(action=Action.GAP, id="gap-1", count=12),
        host=Host(id="test-host"),
        process=Process(entity_id="", pid=0),
    )
    builder, store = build(
        [make_event(Action.READ, path="/a", ts=1), gap, make_event(Action.READ, path="/a", ts=6)]
    )
    edges = sorted(store.edges.values(), key=lambda e: e.id)
    assert [e.incomplete for e in edges] == [True, False]
    assert store.gaps == [("test-host", 5, 12)]
    assert builder.counters.edges_marked_incomplete == 1


def test_events_missing_their_object_are_counted():
    builder, _ = build([make_event(Action.WRITE, path=None)])
    assert builder.counters.events_without_object == 1


def test_eviction_is_bounded_and_counted():
    limits = BuilderLimits(max_nodes=100, max_open_edges=100)
    builder = GraphBuilder(limits=limits)
    store = MemoryGraphStore()
    for i in range(1000):
        builder.add(make_event(Action.WRITE, path=f"/f{i}", ts=i))
        if i % 50 == 0:
            store.apply(builder.drain())
            builder.evict()
    store.apply(builder.drain())
    builder.evict()
    assert len(builder._nodes) <= 100
    assert builder.counters.nodes_evicted > 0
    # nothing lost: every write is in the store
    assert len(store.edges) == 1000


def test_forgotten_nodes_and_old_open_edges_are_made_anew():
    builder = GraphBuilder()
    builder.add(make_event(Action.WRITE, pid=2, path="/old", ts=1))
    builder.add(make_event(Action.WRITE, pid=3, path="/new", ts=500))
    first = builder.drain(full=True)
    old_file = next(n.id for n in first.nodes if n.path == "/old")
    builder.forget([old_file, "never-held"], edges_before=100)
    assert builder.node(old_file) is None
    assert builder.node(entity(2)) is not None  # not deleted: still held
    assert builder.counters.nodes_forgotten == 1
    assert builder.counters.open_edges_evicted == 1  # pid 2 -> /old, older than 100
    builder.add(make_event(Action.WRITE, pid=2, path="/old", ts=600))
    builder.add(make_event(Action.WRITE, pid=3, path="/new", ts=601))
    again = builder.drain()
    # the write to /old is a new edge with its file node sent again; /new merges as before
    assert [node.path for node in again.nodes] == ["/old"]
    assert [(e.src, e.dst) for e in again.new_edges] == [(entity(2), old_file)]
    assert len(again.updated_edges) == 1


actions = st.sampled_from([Action.READ, Action.WRITE, Action.OPEN, Action.CREATE])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(actions, st.integers(1, 4), st.integers(1, 3)), max_size=40))
def test_reduction_keeps_every_event_and_no_dangling_edges(script):
    events = [
        make_event(action, pid=pid, path=f"/f{file}", ts=t + 1)
        for t, (action, pid, file) in enumerate(script)
    ]
    _, store = build(events)
    assert sum(e.count for e in store.edges.values()) == len(events)
    for edge in store.edges.values():
        assert edge.src in store.nodes and edge.dst in store.nodes
        assert edge.first_ts <= edge.last_ts


def _client_end(event, ip="10.0.0.1", port=40388, transport="tcp"):
    import msgspec

    from provarmor.model.event import Endpoint, Network

    return msgspec.structs.replace(
        event,
        source=Endpoint(ip=ip, port=port),
        network=Network(transport=transport, direction="egress"),
    )


def test_connect_naming_its_own_end_links_the_client_to_the_server_side():
    connect = make_event(Action.CONNECT, pid=2, ip="10.0.0.2", port=22, ts=2)
    _, store = build(
        [
            _client_end(connect),
            make_event(Action.ACCEPT, pid=3, ip="10.0.0.1", port=40388, ts=3),
        ]
    )
    flows = {(e.src, e.dst, e.action) for e in store.edges.values()}
    assert flows == {
        (entity(2), "sock:10.0.0.2:22", "connect"),
        (entity(2), "sock:10.0.0.1:40388", "connection"),
        ("sock:10.0.0.1:40388", entity(3), "accept"),
    }
    assert store.nodes["sock:10.0.0.1:40388"].kind is NodeKind.SOCKET


def test_no_connection_edge_without_a_usable_client_end():
    failed = make_event(Action.CONNECT, pid=2, ip="10.0.0.2", port=22, ts=2, outcome="failure")
    plain = make_event(Action.CONNECT, pid=2, ip="10.0.0.2", port=22, ts=3)
    _, store = build(
        [
            _client_end(failed),
            _client_end(plain, transport="udp"),
            _client_end(plain, ip="0.0.0.0"),
            _client_end(plain, port=0),
            plain,
        ]
    )
    assert {e.action for e in store.edges.values()} == {"connect"}


def test_an_aggregated_flow_spans_its_first_to_last_byte_and_traces_back_in_time():
    """A recv summed over a second starts at its first byte: the download it carried
    into the file written meanwhile traces back to the server."""
    recv = make_event(Action.RECV, pid=2, ip="127.0.0.1", port=8000, ts=10)
    recv = msgspec.structs.replace(recv, event=msgspec.structs.replace(recv.event, count=5, end=50))
    _, store = build([make_event(Action.CREATE, pid=2, path="/tmp/page", ts=20), recv])
    [edge] = [e for e in store.edges.values() if e.action == "recv"]
    assert (edge.first_ts, edge.last_ts, edge.count) == (10, 50, 5)
    result = trace(store, "file:test-host:/tmp/page", direction=Direction.BACKWARD)
    assert "sock:127.0.0.1:8000" in result.nodes


def test_a_process_whose_program_arrives_late_keeps_one_node_that_gets_it():
    """Events of pid 7 came before its fork (a sensor reads CPUs' buffers out of order),
    and a child it forked meanwhile named it as parent: one node, labelled with the
    program once known, and the child, which runs that program too, gets it as well."""
    early = make_event(Action.OPEN, pid=7, exe="", path="/etc/passwd", ts=2)
    child = make_event(Action.FORK, pid=8, ppid=7, exe="", ts=3)
    child = msgspec.structs.replace(
        child,
        process=msgspec.structs.replace(
            child.process, parent=msgspec.structs.replace(child.process.parent, executable="")
        ),
    )
    fork = make_event(Action.FORK, pid=7, ppid=1, exe="/usr/bin/python3", ts=1)
    builder, store = build([early, child, fork, make_event(Action.EXIT, pid=7, ts=4)])
    processes = [node for node in store.nodes.values() if node.pid == 7]
    assert [(node.id, node.label, node.executable) for node in processes] == [
        (entity(7), "/usr/bin/python3", "/usr/bin/python3")
    ]
    assert processes[0].parent == entity(1)
    assert store.nodes[entity(8)].parent == entity(7)
    assert store.nodes[entity(8)].label == "/usr/bin/python3"
    assert builder.node(entity(7)).label == "/usr/bin/python3"


def _tables(builder):
    """The builder's tables, in order where order counts (eviction ranks by it)."""
    return (
        list(builder._nodes.items()),
        list(builder._node_seq.items()),
        list(builder._open.items()),
        dict(builder._last_in),
        dict(builder._last_out),
        {node_id: node.id for node_id, node in builder._touched.items()},
    )


def test_tables_taken_as_changes_put_back_in_order_equal_the_builders():
    events = list(load_dataset(DATA / "lab" / "nodlink-ubuntu-seed1").events())
    # small limits: nodes and open edges are evicted (and come back) all along
    builder = GraphBuilder(limits=BuilderLimits(max_nodes=150, max_open_edges=200))
    copy = GraphBuilder()
    codec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(TablesChunk)
    taken = 0
    for number, event in enumerate(events, start=1):
        builder.add(event)
        if number % 37 == 0:  # a batch ends
            builder.drain(full=number % 370 == 0)
            builder.evict()
        if number % 600 == 0:  # retention drops what is older than the last 300 events
            old = events[number - 300].timestamp
            builder.forget(
                [n for n, node in builder._nodes.items() if node.last_ts < old], edges_before=old
            )
        if number % 200 == 0 or number == len(events):
            chunk = builder.take_tables(full=taken == 0)
            copy.put_tables(codec[1].decode(codec[0].encode(chunk)))
            taken += 1
            assert _tables(copy) == _tables(builder), f"after event {number}"
    assert taken > 10
    assert builder.counters.nodes_evicted and builder.counters.open_edges_evicted
    assert builder.counters.nodes_forgotten
    restarted = GraphBuilder()
    restarted.put_tables(builder.take_tables(full=True))
    assert _tables(restarted) == _tables(builder)


def test_a_builder_nobody_checkpoints_tracks_no_changes():
    """Tracking starts with the first full chunk: a builder that is never checkpointed (an
    agent's, a file ingest's) keeps no growing record of what changed."""
    builder, _ = build([make_event(Action.READ, pid=2, path=f"/f{i}", ts=i) for i in range(50)])
    assert builder._changed_nodes is None and builder._changed_open is None
    with pytest.raises(ValueError, match="take a full chunk first"):
        builder.take_tables(full=False)
    assert len(builder.take_tables(full=True).edges) == 50
    builder.add(make_event(Action.READ, pid=2, path="/f0", ts=60))
    changes = builder.take_tables(full=False)
    assert [e.key for e in changes.edges] == [("file:test-host:/f0", entity(2), "read")]


def test_a_running_snapshot_gives_the_process_its_node_and_parent_but_no_flow():
    """What /proc showed at the sensor's start: the process tree of what was already
    running (an investigation walks up from a later act), with no edge, not even to the
    socket the server listened on."""
    running = make_event(Action.RUNNING, pid=3, ppid=2, exe="/usr/sbin/sshd", ts=1)
    running = msgspec.structs.replace(running, source=Endpoint(ip="0.0.0.0", port=22))
    _, store = build([running, make_event(Action.OPEN, pid=3, path="/etc/shadow", ts=2)])
    node = store.nodes[entity(3)]
    assert (node.parent, node.executable) == (entity(2), "/usr/sbin/sshd")
    assert {(e.src, e.dst, e.action) for e in store.edges.values()} == {
        ("file:test-host:/etc/shadow", entity(3), "open")
    }
