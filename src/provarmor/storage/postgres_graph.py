"""PostgresGraphStore: the provenance graph in PostgreSQL (psycopg 3), the production store;
the SQL is :class:`~provarmor.storage.sql_graph.SqlGraphStore`'s, so it answers as the SQLite
store does. Several stores share one database by living in different schemas (``schema=`` or
``?schema=`` in the URL; default ``public``)."""

from __future__ import annotations

from provarmor.storage.postgres_dialect import PostgresDialect
from provarmor.storage.sql_graph import SqlGraphStore


class PostgresGraphStore(SqlGraphStore):
    """The GraphStore in one PostgreSQL schema. One writer per schema; readers may connect
    freely."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        dialect = PostgresDialect(url, name="graph store", schema=schema)
        self.schema = dialect.schema
        super().__init__(dialect)
