"""SQLite-only behaviour; what every store does is in test_sql_graph.py."""

import os
import sqlite3
import stat

import pytest

from provarmor.graph.builder import GraphDelta
from provarmor.graph.records import Node, NodeKind
from provarmor.model.errors import StorageError
from provarmor.storage.sqlite_graph import SqliteGraphStore


def test_the_file_is_in_wal_mode(tmp_path):
    path = tmp_path / "g.db"
    SqliteGraphStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


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


def test_format_1_is_upgraded_to_2_with_the_time_indexes(data_dir, tmp_path):
    copy = tmp_path / "v1.db"
    copy.write_bytes((data_dir / "storage" / "graph-v1.db").read_bytes())
    SqliteGraphStore(copy).close()
    db = sqlite3.connect(copy)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    version = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()[0]
    db.close()
    assert {"edges_by_last_ts", "event_index_by_ts"} <= indexes
    assert version == "2"
    store = SqliteGraphStore(copy)
    found = store.event_edge("fixture-connect")
    assert found is not None
    assert found[0].dst == "sock:127.0.0.1:80"
    store.close()


def test_format_version_2_fixture_still_opens(data_dir, tmp_path):
    copy = tmp_path / "v2.db"
    copy.write_bytes((data_dir / "storage" / "graph-v2.db").read_bytes())
    store = SqliteGraphStore(copy)
    assert store.stats().nodes_by_kind["process"] == 2
    found = store.event_edge("fixture-connect")
    assert found is not None
    assert found[0].dst == "sock:127.0.0.1:80"
    assert store.meta("format_version") == "2"
    store.close()


def test_new_file_and_its_journals_are_owner_only(tmp_path):
    old = os.umask(0o022)  # the usual umask: without care, a 0644 file
    try:
        store = SqliteGraphStore(tmp_path / "graph.db")
    finally:
        os.umask(old)
    files = sorted(tmp_path.glob("graph.db*"))
    assert [p.name for p in files][:2] == ["graph.db", "graph.db-shm"]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
    store.close()


def test_a_batch_that_cannot_be_stored_leaves_the_store_usable(tmp_path):
    store = SqliteGraphStore(tmp_path / "graph.db")
    node = Node(id="p1", kind=NodeKind.PROCESS, host="h", first_ts=2**64, last_ts=2**64)
    with pytest.raises(StorageError):
        store.apply(GraphDelta(nodes=[node]))
    good = Node(id="p2", kind=NodeKind.PROCESS, host="h", first_ts=1, last_ts=1)
    store.apply(GraphDelta(nodes=[good]))
    assert store.node("p2") is not None
    assert store.node("p1") is None
    store.close()


def test_a_new_file_has_the_tables_and_columns_of_format_1(data_dir, tmp_path):
    """The shared SQL writes the same stored format as the SQLite-only store did."""

    def columns(path):
        db = sqlite3.connect(path)
        tables = [
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        found = {
            table: [row[1:] for row in db.execute(f"PRAGMA table_info({table})")]
            for table in sorted(tables)
        }
        db.close()
        return found

    copy = tmp_path / "v1.db"
    copy.write_bytes((data_dir / "storage" / "graph-v1.db").read_bytes())
    SqliteGraphStore(tmp_path / "new.db").close()
    assert columns(tmp_path / "new.db") == columns(copy)
