import copy

import pytest

from provarmor.graph.builder import GraphDelta
from provarmor.graph.read_cache import ReadCachedStore
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.model.errors import StorageError
from provarmor.storage.sqlite_graph import SqliteGraphStore


def process(node_id, **values):
    return Node(
        id=node_id, kind=NodeKind.PROCESS, host="h", **{"first_ts": 5, "last_ts": 5, **values}
    )


@pytest.fixture
def store(tmp_path):
    opened = ReadCachedStore(SqliteGraphStore(tmp_path / "g.db"))
    yield opened
    opened.close()


def test_reads_after_a_batch_see_what_it_changed(store):
    first = Edge(id=1, src="p", dst="q", action="ptrace", first_ts=5, last_ts=5)
    store.apply(GraphDelta(nodes=[process("p"), process("q")], new_edges=[first]))
    assert store.node("r") is None
    assert store.node("p").last_ts == 5
    assert [e.id for e in store.in_edges("q")] == [1]
    assert [e.id for e in store.out_edges("p")] == [1]
    grown = Edge(id=1, src="p", dst="q", action="ptrace", first_ts=5, last_ts=9, count=2)
    second = Edge(id=2, src="r", dst="q", action="kill", first_ts=9, last_ts=9)
    store.apply(
        GraphDelta(
            nodes=[process("p", last_ts=9), process("r")],
            new_edges=[second],
            updated_edges=[grown],
        )
    )
    assert store.node("p").last_ts == 9
    assert store.node("r") is not None
    assert [(e.id, e.count) for e in store.in_edges("q")] == [(1, 2), (2, 1)]
    assert [(e.id, e.last_ts) for e in store.out_edges("p")] == [(1, 9)]
    assert [e.id for e in store.out_edges("r")] == [2]


def test_repeated_reads_are_answered_from_the_cache(store, tmp_path):
    store.apply(GraphDelta(nodes=[process("p")]))
    assert store.node("p").label == ""
    assert store.out_edges("p") == []
    other = SqliteGraphStore(tmp_path / "g.db")  # a write that bypasses the cache
    other.apply(
        GraphDelta(
            nodes=[process("p", label="sh"), process("q")],
            new_edges=[Edge(id=1, src="p", dst="q", action="fork", first_ts=5, last_ts=5)],
        )
    )
    other.close()
    assert store.node("p").label == ""
    assert store.out_edges("p") == []
    assert store.store.node("p").label == "sh"


def test_a_failed_batch_leaves_the_cached_reads_as_the_store_is(store):
    store.apply(GraphDelta(nodes=[process("p")]))
    assert store.node("p").label == ""
    assert store.out_edges("p") == []
    dangling = Edge(id=1, src="p", dst="nowhere", action="write", first_ts=1, last_ts=1)
    with pytest.raises(StorageError):
        store.apply(GraphDelta(nodes=[process("p", label="sh")], new_edges=[dangling]))
    assert store.node("p").label == ""
    assert store.out_edges("p") == []


def test_a_caller_changing_its_list_does_not_change_the_cache(store):
    edge = Edge(id=1, src="p", dst="q", action="fork", first_ts=5, last_ts=5)
    store.apply(GraphDelta(nodes=[process("p"), process("q")], new_edges=[edge]))
    store.out_edges("p").clear()
    assert [e.id for e in store.out_edges("p")] == [1]


def test_a_full_cache_is_cleared_and_counted(tmp_path):
    store = ReadCachedStore(SqliteGraphStore(tmp_path / "g.db"), max_nodes=2)
    store.apply(GraphDelta(nodes=[process("a"), process("b"), process("c")]))
    assert [store.node(n).id for n in ("a", "b", "c", "a")] == ["a", "b", "c", "a"]
    assert store.resets == 1
    store.close()


def test_a_copy_of_the_cache_keeps_the_store_and_bounds_not_the_answers(store):
    store.apply(GraphDelta(nodes=[process("p")]))
    assert store.node("p") is not None
    state = store.__getstate__()
    assert set(state) == {"store", "max_nodes", "max_edges", "resets", "write_behind", "_pending"}
    copied = copy.copy(store)
    assert copied.store is store.store
    assert copied._nodes == {} and copied._lists == {}
    assert copied.node("p") is not None
