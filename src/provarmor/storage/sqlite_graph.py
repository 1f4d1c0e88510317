"""SqliteGraphStore: the provenance graph persisted in one SQLite file (WAL mode), the
embedded default; the SQL is :class:`~provarmor.storage.sql_graph.SqlGraphStore`'s."""

from __future__ import annotations

from pathlib import Path

from provarmor.storage.sql_graph import SqlGraphStore
from provarmor.storage.sqlite_dialect import SqliteDialect


class SqliteGraphStore(SqlGraphStore):
    """The GraphStore in a SQLite file (made owner-only) or ``:memory:``."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(SqliteDialect(path, name="graph store"))
