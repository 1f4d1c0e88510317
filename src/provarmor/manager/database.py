"""Opening the findings store named by a URL, spelled as for the graph stores
(:mod:`provarmor.storage.urls`): ``sqlite:///relative/path``, ``sqlite:////absolute/path``,
a bare path, or ``postgresql://...`` (``postgres://`` too; ``?schema=`` picks a schema,
``pool_size=`` the connections the process's stores share)."""

from __future__ import annotations

from pathlib import Path

from provarmor.manager.sql_store import SqlFindingsStore
from provarmor.model.errors import ConfigError
from provarmor.storage.sqlite_dialect import SqliteDialect

STORE_NAME = "findings store"
"""What failures name (``cannot open the findings store: ...``)."""


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL or a bare path; ``None`` for other URLs."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    if "://" not in url and url:
        return Path(url)
    return None


def open_findings_store(url: str) -> SqlFindingsStore:
    if is_postgres_url(url):
        from provarmor.storage.postgres_dialect import PostgresDialect  # needs psycopg

        return SqlFindingsStore(PostgresDialect(url, name=STORE_NAME))
    path = sqlite_path(url)
    if path is None:
        raise ConfigError(
            "database URL must be sqlite:///PATH or postgresql://...", location=url.split("@")[-1]
        )
    return SqlFindingsStore(SqliteDialect(path, name=STORE_NAME))
