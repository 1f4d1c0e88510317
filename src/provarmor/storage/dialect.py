"""The seam between the SQL stores and their engines: one SQL text for SQLite and PostgreSQL,
and a :class:`Dialect` for what differs (the connection, placeholders, column types, bulk
loading, how a transaction begins and how errors are reported).

The SQL the stores write is the common subset of both engines: ``?`` placeholders,
``ON CONFLICT`` upserts, ``UPDATE .. FROM``, ``lower(..) LIKE .. ESCAPE`` for
case-insensitive literal search. Table definitions name their types through
:meth:`Dialect.ddl`'s fields (``{serial}``, ``{int}``, ``{bool}``, ``{bytes}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

Columns = Sequence[tuple[str, str]]
"""Columns loaded in bulk: ``(name, type)`` pairs, the type as PostgreSQL's binary COPY names
it (``text``, ``int8``, ``int4``, ``bool``)."""


class Cursor(Protocol):
    """What the stores need of a DB-API cursor (sqlite3 and psycopg both have it)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Sequence[object] | None: ...

    def fetchall(self) -> Sequence[Sequence[object]]: ...


class Dialect(Protocol):
    """One open connection to one engine. Every engine failure is a
    :class:`~provarmor.model.errors.StorageError` located at :attr:`location`."""

    location: str
    """Where the data lives, for errors (a path, or a URL without its password)."""

    def ddl(self, script: str) -> str:
        """``script`` with its type fields filled in: ``{serial}`` (an auto-increment integer
        primary key), ``{int}`` (a 64-bit integer), ``{bool}`` and ``{bytes}``."""

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor:
        """Run ``sql`` written with ``?`` placeholders."""

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...

    def execute_script(self, script: str) -> None:
        """Run statements separated by ``;`` (no values)."""

    def load(self, table: str, columns: Columns, rows: Sequence[Sequence[object]]) -> None:
        """Append ``rows`` to ``table``'s ``columns`` by the fastest way the engine has."""

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
        """Insert ``rows`` (inside a :meth:`transaction`); a row whose ``conflict`` column(s)
        match a stored one updates it with ``update`` (a ``SET`` list over ``excluded.`` and
        the table's columns). The columns ``returning`` names, a row for each row written
        in no set order, when it is given (``conflict`` then one column, and no two rows may
        share a key). Of rows that share a ``conflict`` key, the last one counts."""

    def update(self, table: str, columns: Columns, rows: Sequence[Sequence[object]]) -> None:
        """Set ``columns[1:]`` of the stored rows whose ``columns[0]`` matches (inside a
        :meth:`transaction`; of rows with one key, the last one counts)."""

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction: committed on exit, rolled back on an exception."""

    def lock(self, key: str) -> None:
        """Inside a :meth:`transaction`: wait until no other transaction (of any connection
        or process) holds ``key``, and hold it until this one ends. What is read after it
        is then checked and written without a concurrent writer of ``key`` between."""

    def setup(self) -> AbstractContextManager[None]:
        """A transaction for creating and upgrading tables, one connection at a time per
        database (or PostgreSQL schema, made here when missing)."""

    def used_bytes(self) -> int:
        """Bytes the data takes: SQLite, the file's pages less its free ones; PostgreSQL, the
        tables of the schema with their indexes and TOAST (whose files keep their size after
        deletes: vacuum makes the space reusable in place)."""

    def reclaim(self, *, pages: int) -> int:
        """Give up to ``pages`` pages freed by deletes back to the file system (outside a
        transaction); the bytes the data shrank by: SQLite's incremental vacuum (0 once
        nothing is free), always 0 on PostgreSQL (see :meth:`vacuum`)."""

    def vacuum(self, tables: Sequence[str]) -> None:
        """Make the space of rows deleted from ``tables`` reusable now, without holding the
        store's connection (PostgreSQL: ``VACUUM`` on a pooled connection of its own, outside
        any transaction; SQLite has nothing to do)."""

    def close(self) -> None: ...


def fill_types(script: str, types: dict[str, str]) -> str:
    """``script`` with each type field (``{int}``) replaced by its DDL in ``types``."""
    for field, kind in types.items():
        script = script.replace(field, kind)
    return script


def statements(script: str) -> list[str]:
    """The statements of a script without values, split at ``;``."""
    return [statement for statement in script.split(";") if statement.strip()]


def column_names(columns: Columns) -> str:
    return ", ".join(name for name, _ in columns)


def upsert_statement(  # noqa: PLR0913
    table: str, columns: Columns, rows: str, *, conflict: str, update: str, returning: str
) -> str:
    """The upsert of :meth:`Dialect.upsert`, its ``rows`` a ``VALUES`` list or a ``SELECT``."""
    statement = (
        f"INSERT INTO {table} ({column_names(columns)}) {rows} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {update}"
    )
    return f"{statement} RETURNING {returning}" if returning else statement


IN_KEYS = 500
"""Keys per ``IN (..)`` list: within every engine's limit on parameters."""


def select_where_in(
    db: Dialect, select: str, column: str, keys: Sequence[object]
) -> list[Sequence[object]]:
    """The rows of ``select`` (``SELECT .. FROM table``) whose ``column`` is one of ``keys``,
    :data:`IN_KEYS` keys per statement."""
    found: list[Sequence[object]] = []
    for start in range(0, len(keys), IN_KEYS):
        chunk = keys[start : start + IN_KEYS]
        marks = ", ".join("?" for _ in chunk)
        found += db.execute(f"{select} WHERE {column} IN ({marks})", chunk).fetchall()
    return found


def delete_where_in(db: Dialect, table: str, column: str, keys: Sequence[object]) -> None:
    """Delete the rows of ``table`` whose ``column`` is one of ``keys``, :data:`IN_KEYS` keys
    per statement."""
    for start in range(0, len(keys), IN_KEYS):
        chunk = keys[start : start + IN_KEYS]
        marks = ", ".join("?" for _ in chunk)
        db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk)


def like_literal(text: str) -> str:
    """``text`` for a LIKE pattern with ``ESCAPE '\\'``: ``%``, ``_`` and ``\\`` match
    themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
