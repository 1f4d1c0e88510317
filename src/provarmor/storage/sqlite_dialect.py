"""The SQLite :class:`~provarmor.storage.dialect.Dialect`: one file in WAL mode, made (with
its folders) readable by its owner only; ``:memory:`` and ``file:`` URIs are opened as given.

A new file is made with ``auto_vacuum = INCREMENTAL``, so that :meth:`SqliteDialect.reclaim`
can shrink it after retention deletes; a file made before (``auto_vacuum = NONE``) keeps its
size and reuses its free pages for new rows (only a full ``VACUUM`` would change its mode)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from provarmor.model.errors import StorageError
from provarmor.storage.dialect import (
    Columns,
    Cursor,
    column_names,
    fill_types,
    select_where_in,
    statements,
    upsert_statement,
)
from provarmor.storage.private import private_dir, private_file

BUSY_TIMEOUT_S = 30
"""How long a writer waits for another connection's write lock before failing."""
CACHE_KIB = 65_536
"""The page cache of one connection."""

INCREMENTAL = 2
"""``PRAGMA auto_vacuum``'s value for incremental vacuum."""

_TYPES = {"{serial}": "INTEGER PRIMARY KEY", "{int}": "INTEGER", "{bool}": "INTEGER"}


def _values(columns: Columns) -> str:
    return f"VALUES ({', '.join('?' for _ in columns)})"


class SqliteDialect:
    def __init__(self, path: Path | str, *, name: str) -> None:
        """``name``: what the file holds, for messages (``graph store``)."""
        self.location = str(path)
        self._name = name
        try:
            if self.location != ":memory:" and not self.location.startswith("file:"):
                private_dir(Path(path).parent)
                private_file(Path(path))
            self._connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
            # takes effect only in a file without tables yet
            self._connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA synchronous = NORMAL")
            self._connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the {name}: {exc}", location=self.location) from None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: an integer over 64 bits
            raise StorageError(f"{self._name}: {exc}", location=self.location) from None

    def ddl(self, script: str) -> str:
        return fill_types(script, _TYPES)

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor:
        with self._errors():
            return self._connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self._errors():
            self._connection.executemany(sql, rows)

    def execute_script(self, script: str) -> None:
        for statement in statements(script):
            self.execute(statement)

    def load(self, table: str, columns: Columns, rows: Sequence[Sequence[object]]) -> None:
        self.executemany(
            f"INSERT INTO {table} ({column_names(columns)}) {_values(columns)}",
            rows,
        )

    def upsert(  # noqa: PLR0913
        self,
        table: str,
        columns: Columns,
        rows: Sequence[Sequence[object]],
        *,
        conflict: str,
        update: str,
        returning: str = "",
    ) -> Sequence[Sequence[object]]:
        """``executemany`` (a statement per row, the fastest way into SQLite); ``returning``
        is then read back by the rows' ``conflict`` keys (one column)."""
        self.executemany(
            upsert_statement(
                table, columns, _values(columns), conflict=conflict, update=update, returning=""
            ),
            rows,
        )
        if not returning:
            return []
        index = [name for name, _ in columns].index(conflict)
        return select_where_in(
            self, f"SELECT {returning} FROM {table}", conflict, [row[index] for row in rows]
        )

    def update(self, table: str, columns: Columns, rows: Sequence[Sequence[object]]) -> None:
        (key, _), *values = columns
        assignments = ", ".join(f"{name} = ?" for name, _ in values)
        self.executemany(
            f"UPDATE {table} SET {assignments} WHERE {key} = ?",
            [(*row[1:], row[0]) for row in rows],
        )

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

    def setup(self) -> AbstractContextManager[None]:
        return self.transaction()  # BEGIN IMMEDIATE: one writer at a time already

    def _pragma(self, name: str) -> int:
        row = self.execute(f"PRAGMA {name}").fetchone()
        assert row is not None
        value = row[0]
        assert isinstance(value, int)
        return value

    def used_bytes(self) -> int:
        pages = self._pragma("page_count") - self._pragma("freelist_count")
        return pages * self._pragma("page_size")

    def reclaim(self, *, pages: int) -> int:
        if self._pragma("auto_vacuum") != INCREMENTAL or not self._pragma("freelist_count"):
            return 0
        before = self._pragma("page_count")
        self.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
        if not self._pragma("freelist_count"):
            # the file itself shrinks when the WAL is checkpointed
            self.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return max(before - self._pragma("page_count"), 0) * self._pragma("page_size")

    def vacuum(self, tables: Sequence[str]) -> None:
        """Nothing: SQLite reuses free pages itself, and :meth:`reclaim` gives them back."""

    def close(self) -> None:
        self._connection.close()
