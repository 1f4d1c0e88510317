from provarmor.graph.builder import GraphBuilder
from provarmor.graph.records import Node, NodeKind
from provarmor.graph.store import MemoryGraphStore, merge_node
from provarmor.model.actions import Action
from provarmor.testing.factories import make_event


def test_merge_node_keeps_widest_span_and_known_labels():
    old = Node(id="p", kind=NodeKind.PROCESS, host="h", first_ts=1, last_ts=5, executable="/bin/a")
    new = Node(id="p", kind=NodeKind.PROCESS, host="h", first_ts=3, last_ts=9)
    merged = merge_node(old, new)
    assert (merged.first_ts, merged.last_ts, merged.executable) == (1, 9, "/bin/a")


def test_memory_store_stats_and_lookup():
    builder = GraphBuilder()
    for ts, path in enumerate(["/a", "/b", "/a"]):
        builder.add(make_event(Action.WRITE, path=path, ts=ts + 1, event_id=f"e{ts}"))
    store = MemoryGraphStore()
    store.apply(builder.drain())
    stats = store.stats()
    assert stats.edges_by_action == {"write": 3}
    assert stats.events_indexed == 3
    assert (stats.first_ts, stats.last_ts) == (1, 3)
    assert [n.id for n in store.find_nodes("file:test-host:/b")] == ["file:test-host:/b"]
    # "/b" names the file exactly: the process whose text also holds "/b" is not a candidate
    assert [n.id for n in store.find_nodes("/b")] == ["file:test-host:/b"]
    found = store.event_edge("e2")
    assert found is not None and found[1] == 3
    files = store.nodes_of(["file:test-host:/b", "nope", "file:test-host:/a"])
    assert files == {n: store.nodes[n] for n in ("file:test-host:/b", "file:test-host:/a")}
