"""The SQLite dialect: a WAL file made owner-only with its folders, bulk loads and upserts,
transactions that commit or roll back whole, and a clear StorageError for every failure."""

import os
import sqlite3
import stat

import pytest

from provarmor.model.errors import StorageError
from provarmor.storage.sqlite_dialect import SqliteDialect

COLUMNS = (("k", "int8"), ("v", "text"))


@pytest.fixture
def dialect(tmp_path):
    opened = SqliteDialect(tmp_path / "t.db", name="test store")
    with opened.setup():
        opened.execute_script(opened.ddl("CREATE TABLE t (k {int} PRIMARY KEY, v TEXT)"))
    yield opened
    opened.close()


def _insert_then_fail(dialect) -> None:
    with dialect.transaction():
        dialect.execute("INSERT INTO t (k, v) VALUES (?, ?)", (3, "c"))
        raise RuntimeError("abandon")


def test_opens_in_wal_mode_making_private_folders(tmp_path):
    old = os.umask(0o022)  # the usual umask: without care, 0644 files and 0755 folders
    try:
        path = tmp_path / "a" / "b" / "t.db"
        dialect = SqliteDialect(path, name="test store")
    finally:
        os.umask(old)
    assert dialect.location == str(path)
    assert dialect.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    dialect.close()
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_transaction_commits_or_rolls_back_whole(dialect):
    with dialect.transaction():
        dialect.executemany("INSERT INTO t (k, v) VALUES (?, ?)", [(1, "a"), (2, "b")])
    with pytest.raises(RuntimeError, match="abandon"):
        _insert_then_fail(dialect)
    assert dialect.execute("SELECT k FROM t ORDER BY k").fetchall() == [(1,), (2,)]


def test_load_upsert_and_update_in_bulk(dialect):
    with dialect.transaction():
        dialect.load("t", COLUMNS, [(1, "a"), (2, "b")])
        returned = dialect.upsert(
            "t", COLUMNS, [(2, "B"), (3, "c")], conflict="k", update="v = excluded.v", returning="k"
        )
        dialect.update("t", COLUMNS, [(1, "A"), (9, "none")])
    assert sorted(returned) == [(2,), (3,)]
    assert dialect.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [
        (1, "A"),
        (2, "B"),
        (3, "c"),
    ]


def test_failures_are_storage_errors_at_the_file(dialect):
    with pytest.raises(StorageError, match="test store: no such table") as caught:
        dialect.execute("SELECT x FROM nowhere")
    assert caught.value.location == dialect.location
    with pytest.raises(StorageError, match="test store:"):
        dialect.load("t", COLUMNS, [(2**64, "too big")])
    assert dialect.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_file_that_is_not_sqlite_cannot_be_opened(tmp_path):
    path = tmp_path / "t.db"
    path.write_bytes(b"this is not a database file at all" * 100)
    with pytest.raises(StorageError, match="cannot open the test store") as caught:
        SqliteDialect(path, name="test store")
    assert caught.value.location == str(path)


def _fill(dialect, rows):
    with dialect.transaction():
        dialect.executemany(
            "INSERT INTO t (k, v) VALUES (?, ?)", [(k, "x" * 1000) for k in range(rows)]
        )


def test_deleted_rows_free_used_bytes_and_reclaim_shrinks_the_file(dialect, tmp_path):
    _fill(dialect, 4000)
    full = dialect.used_bytes()
    with dialect.transaction():
        dialect.execute("DELETE FROM t WHERE k < 3000")
    assert dialect.used_bytes() < full / 2  # free pages are not used bytes
    size = (tmp_path / "t.db").stat().st_size
    freed = 0
    while step := dialect.reclaim(pages=100):  # a bounded step at a time
        assert step <= 100 * 4096
        freed += step
    assert freed > full / 2
    assert (tmp_path / "t.db").stat().st_size <= size - freed


def test_a_file_made_without_incremental_vacuum_keeps_its_size(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)  # as files made before retention: auto_vacuum NONE
    old.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    old.close()
    dialect = SqliteDialect(path, name="test store")
    _fill(dialect, 1000)
    with dialect.transaction():
        dialect.execute("DELETE FROM t")
    assert dialect.reclaim(pages=100) == 0
    dialect.close()
