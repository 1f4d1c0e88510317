import copy
from pathlib import Path

import pytest

from provarmor.evaluation.dataset import load_dataset
from provarmor.graph.builder import GraphBuilder, GraphDelta
from provarmor.graph.read_cache import ReadCachedStore
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.model.errors import StorageError
from provarmor.pipeline.analysis import batches
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


def test_a_write_brings_the_cached_reads_up_to_date_without_reading_them_again(store, tmp_path):
    """After a committed write the cache answers as the store does (the cached node merged
    with its new version, edge lists with the new and grown edges, meta) from memory: a
    write that bypasses the cache afterwards is not seen."""
    fork = Edge(id=1, src="p", dst="q", action="fork", first_ts=5, last_ts=5)
    store.apply(GraphDelta(nodes=[process("p"), process("q")], new_edges=[fork]), meta={"m": "1"})
    assert store.node("p").label == ""
    assert store.node("r") is None
    assert [e.id for e in store.out_edges("p")] == [1]
    assert [e.id for e in store.in_edges("q")] == [1]
    assert store.meta("m") == "1"
    grown = Edge(id=1, src="p", dst="q", action="fork", first_ts=5, last_ts=9, count=2)
    kill = Edge(id=2, src="r", dst="q", action="kill", first_ts=9, last_ts=9)
    store.apply(
        GraphDelta(
            nodes=[process("p", label="sh", first_ts=7, last_ts=9), process("r")],
            new_edges=[kill],
            updated_edges=[grown],
        ),
        meta={"m": "2"},
    )
    written = {
        "p": store.store.node("p"),
        "r": store.store.node("r"),
        "q<": store.store.in_edges("q"),
        "p>": store.store.out_edges("p"),
    }
    other = SqliteGraphStore(tmp_path / "g.db")  # a write that bypasses the cache
    other.apply(GraphDelta(nodes=[process("p", label="bash"), process("r", label="x")]))
    other.apply(GraphDelta(), meta={"m": "3"})
    other.close()
    assert store.node("p") == written["p"]
    assert (store.node("p").label, store.node("p").last_ts) == ("sh", 9)
    assert store.node("r") == written["r"]
    assert store.nodes_of(["p", "r", "nope"]) == {"p": written["p"], "r": written["r"]}
    assert store.in_edges("q") == written["q<"]
    assert [(e.id, e.count) for e in store.in_edges("q")] == [(1, 2), (2, 1)]
    assert store.out_edges("p") == written["p>"]
    assert store.meta("m") == "2"
    assert store.store.meta("m") == "3"


def test_nodes_of_reads_the_uncached_at_once_and_merges_pending_versions(tmp_path):
    behind = ReadCachedStore(SqliteGraphStore(tmp_path / "g.db"), write_behind=True, max_nodes=3)
    behind.apply(GraphDelta(nodes=[process("p", executable="/bin/sh"), process("q")]))
    behind.flush()
    behind.apply(GraphDelta(nodes=[process("p", last_ts=12), process("n", label="new")]))
    found = behind.nodes_of(["p", "n", "q", "nope", "p"])
    assert list(found) == ["p", "n", "q"]
    assert (found["p"].executable, found["p"].last_ts) == ("/bin/sh", 12)
    assert found["n"].label == "new"
    assert found == {node_id: behind.node(node_id) for node_id in ("p", "n", "q")}
    assert behind.resets == 1  # four ids against room for three: the cache was cleared
    behind.close()


LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1"


def test_writes_behind_read_as_if_written_and_reach_the_store_as_written(tmp_path):
    """The lab capture's graph deltas through a write-through cache and a write-behind one
    flushed every third batch: every read answers the same after every batch (nodes merged
    with their pending versions, edge lists with pending edges in id order, meta, the next
    edge id), and the flushed store holds the same rows."""
    through = ReadCachedStore(SqliteGraphStore(tmp_path / "through.db"))
    behind = ReadCachedStore(SqliteGraphStore(tmp_path / "behind.db"), write_behind=True)
    builder = GraphBuilder()
    events = list(load_dataset(LAB).events())
    seen: set[str] = set()
    for number, batch in enumerate(batches(events, size=100), start=1):
        for event in batch:
            builder.add(event)
        delta = builder.drain(full=False)
        builder.evict()
        meta = {"batch:a": str(number)}
        through.apply(copy.deepcopy(delta), meta=meta)
        behind.apply(delta, meta=meta)
        seen.update(node.id for node in delta.nodes)
        if number % 3 == 0:
            assert behind.pending
            behind.flush()
        assert not through.pending
        assert behind.meta("batch:a") == str(number)
        assert behind.next_edge_id() == through.next_edge_id()
        for node_id in sorted(seen)[number % 7 :: 7]:  # a different seventh each time
            assert behind.node(node_id) == through.node(node_id), node_id
            assert behind.in_edges(node_id) == through.in_edges(node_id), node_id
            assert behind.out_edges(node_id) == through.out_edges(node_id), node_id
    behind.flush()
    assert not behind.pending
    for node_id in seen:
        assert behind.store.node(node_id) == through.store.node(node_id)
    assert list(behind.store.iter_edges()) == list(through.store.iter_edges())
    assert behind.store.stats() == through.store.stats()
    through.close()
    behind.close()


def test_cached_reads_answer_as_the_store_after_every_write_of_the_lab_capture(tmp_path):
    """The lab capture's deltas through the cache: after each write every read the cache
    kept up to date (nodes, edge lists, meta) equals a fresh read of the store."""
    cached = ReadCachedStore(SqliteGraphStore(tmp_path / "g.db"))
    fresh = SqliteGraphStore(tmp_path / "g.db")
    builder = GraphBuilder()
    seen: dict[str, None] = {}
    for number, batch in enumerate(batches(list(load_dataset(LAB).events()), size=100), 1):
        for event in batch:
            builder.add(event)
        delta = builder.drain(full=False)
        builder.evict()
        cached.apply(delta, meta={"batch:a": str(number)})
        seen.update((node.id, None) for node in delta.nodes)
        sample = list(seen)[number % 5 :: 5]  # a different fifth each time
        assert cached.nodes_of(sample) == fresh.nodes_of(sample)
        for node_id in sample:
            assert cached.node(node_id) == fresh.node(node_id), node_id
            assert cached.in_edges(node_id) == fresh.in_edges(node_id), node_id
            assert cached.out_edges(node_id) == fresh.out_edges(node_id), node_id
        assert cached.meta("batch:a") == fresh.meta("batch:a") == str(number)
    assert cached.resets == 0
    fresh.close()
    cached.close()


def test_pending_writes_that_the_store_refuses_stay_pending(tmp_path):
    behind = ReadCachedStore(SqliteGraphStore(tmp_path / "g.db"), write_behind=True)
    behind.apply(GraphDelta(nodes=[process("p")]), meta={"batch:a": "1"})
    behind.apply(
        GraphDelta(new_edges=[Edge(id=1, src="p", dst="q", action="fork", first_ts=5, last_ts=5)])
    )
    with pytest.raises(StorageError, match="unknown node 'q'"):
        behind.flush()
    assert behind.pending
    assert behind.store.meta("batch:a") is None  # nothing of it was written
    behind.apply(GraphDelta(nodes=[process("q")]))
    behind.flush()
    assert [edge.id for edge in behind.store.in_edges("q")] == [1]
    assert behind.store.meta("batch:a") == "1"
    behind.close()


def test_a_pending_node_is_read_merged_with_the_stored_one(tmp_path):
    """A node the builder forgot and made again (later start, no program yet) reads as the
    store will hold it: the earliest start, the known program."""
    behind = ReadCachedStore(SqliteGraphStore(tmp_path / "g.db"), write_behind=True)
    behind.apply(GraphDelta(nodes=[process("p", label="sh", executable="/bin/sh")]))
    behind.flush()
    behind.apply(GraphDelta(nodes=[process("p", first_ts=9, last_ts=12, exited=True)]))
    read = behind.node("p")
    behind.flush()
    assert read == behind.store.node("p")
    assert (read.first_ts, read.last_ts, read.executable, read.exited) == (5, 12, "/bin/sh", True)
    behind.close()
