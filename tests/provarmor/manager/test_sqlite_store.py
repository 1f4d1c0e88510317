"""The SQLite dialect: WAL file made with its directory, transactions that commit or roll
back whole, and a clear StorageError when the file cannot be opened."""

import os
import sqlite3
import stat

import pytest

from provarmor.manager.auth import Role
from provarmor.manager.sqlite_store import SqliteDialect, open_sqlite_store
from provarmor.manager.store import TokenRecord
from provarmor.model.errors import StorageError


def _insert_then_fail(dialect) -> None:
    with dialect.transaction():
        dialect.execute("INSERT INTO t (x) VALUES (?)", (3,))
        raise RuntimeError("abandon")


def test_opens_in_wal_mode_making_the_directory(tmp_path):
    path = tmp_path / "a" / "b" / "findings.db"
    dialect = SqliteDialect(path)
    assert dialect.location == str(path)
    assert dialect.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    dialect.close()
    assert path.is_file()


def test_transaction_commits_or_rolls_back_whole(tmp_path):
    dialect = SqliteDialect(tmp_path / "t.db")
    dialect.execute_script("CREATE TABLE t (x INTEGER); CREATE TABLE u (y INTEGER);")
    with dialect.transaction():
        dialect.executemany("INSERT INTO t (x) VALUES (?)", [(1,), (2,)])
    with pytest.raises(RuntimeError, match="abandon"):
        _insert_then_fail(dialect)
    assert dialect.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    assert dialect.execute("SELECT count(*) FROM u").fetchone() == (0,)
    dialect.close()


def test_store_data_is_visible_to_another_connection(tmp_path):
    path = tmp_path / "findings.db"
    store = open_sqlite_store(path)
    store.add_token(
        TokenRecord(id="t1", role=Role.ADMIN, salt="00", digest="ab", created_ns=1, label="x")
    )
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT id, role, label FROM tokens").fetchall() == [
            ("t1", "admin", "x")
        ]
    other.close()
    store.close()


def test_unopenable_path_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot open the findings store") as caught:
        open_sqlite_store(blocker / "findings.db")
    assert caught.value.location == str(blocker / "findings.db")


def test_a_file_that_is_not_sqlite_is_a_storage_error(tmp_path):
    path = tmp_path / "findings.db"
    path.write_bytes(b"this is not a database file at all" * 100)
    with pytest.raises(StorageError, match="cannot open the findings store"):
        open_sqlite_store(path)


def test_store_file_its_journals_and_new_folders_are_private(tmp_path):
    old = os.umask(0o022)  # the usual umask: without care, 0644 files and 0755 folders
    try:
        path = tmp_path / "state" / "manager" / "manager.db"
        store = open_sqlite_store(path)
        store.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    files = list(path.parent.iterdir())
    assert path in files
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
