"""The findings store in one SQLite file (WAL mode): the embedded default, made (with its
folders) readable by its owner only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from provarmor.manager.sql_store import Cursor, SqlFindingsStore
from provarmor.model.errors import StorageError
from provarmor.storage.private import private_dir, private_file


class SqliteDialect:
    serial = "INTEGER PRIMARY KEY"

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        try:
            private_dir(path.parent)
            private_file(path)
            self._connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA synchronous = NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot open the findings store: {exc}", location=str(path)
            ) from exc

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(f"findings store: {exc}", location=self.location) from exc

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor:
        with self._errors():
            return self._connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self._errors():
            self._connection.executemany(sql, rows)

    def execute_script(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` .. ``COMMIT``; rolled back on an exception, and when the
        commit fails (a full disk), so the connection stays usable."""
        self.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.execute("COMMIT")
        except BaseException:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._connection.close()


def open_sqlite_store(path: Path) -> SqlFindingsStore:
    return SqlFindingsStore(SqliteDialect(path))
