import sqlite3

import pytest

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.trace import Direction, trace_from_event
from provarmor.model.actions import Action
from provarmor.model.errors import StorageError
from provarmor.storage.sqlite_graph import SqliteGraphStore
from provarmor.testing.factories import entity, make_event


def fill(store, events):
    builder = GraphBuilder(next_edge_id=store.next_edge_id())
    for event in events:
        builder.add(event)
    store.apply(builder.drain())


def test_round_trip_and_queries(tmp_path):
    store = SqliteGraphStore(tmp_path / "g.db")
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
    assert store.find_nodes("100%_") == []
    stats = store.stats()
    assert stats.nodes_by_kind == {"process": 2, "file": 2}
    assert stats.edges_by_action["write"] == 2
    store.close()


def test_second_batch_continues_edge_ids_and_merges_nodes(tmp_path):
    path = tmp_path / "g.db"
    store = SqliteGraphStore(path)
    fill(store, [make_event(Action.WRITE, pid=2, path="/a", ts=5)])
    store.close()
    store = SqliteGraphStore(path)
    fill(store, [make_event(Action.WRITE, pid=2, path="/a", ts=1, exe="")])
    assert store.edge_count() == 2
    node = store.node(entity(2))
    assert node is not None and (node.first_ts, node.last_ts) == (1, 5)
    assert node.executable == "/usr/bin/bash"  # an empty later value never erases a known one
    result = trace_from_event(
        store, store.out_edges(entity(2))[0].first_event, direction=Direction.FORWARD
    )
    assert result is not None and "file:test-host:/a" in result.nodes
    store.close()


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "g.db"
    SqliteGraphStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="newer"):
        SqliteGraphStore(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "g.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match=str(path)):
        SqliteGraphStore(path)


def test_format_version_1_fixture_still_opens(data_dir, tmp_path):
    copy = tmp_path / "v1.db"
    copy.write_bytes((data_dir / "storage" / "graph-v1.db").read_bytes())
    store = SqliteGraphStore(copy)
    assert store.stats().nodes_by_kind["process"] == 2
    found = store.event_edge("fixture-connect")
    assert found is not None
    assert found[0].dst == "sock:127.0.0.1:80"
    store.close()
