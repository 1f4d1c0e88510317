"""Opening the findings store named by a URL, spelled as for the graph stores
(:mod:`provarmor.storage.urls`): ``sqlite:///relative/path``, ``sqlite:////absolute/path``,
a bare path, or ``postgresql://...`` (``postgres://`` too; ``?schema=`` picks a schema)."""

from __future__ import annotations

from pathlib import Path

from provarmor.manager.sql_store import SqlFindingsStore
from provarmor.model.errors import ConfigError


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
        from provarmor.manager.postgres_store import open_postgres_store

        return open_postgres_store(url)
    path = sqlite_path(url)
    if path is None:
        raise ConfigError(
            "database URL must be sqlite:///PATH or postgresql://...", location=url.split("@")[-1]
        )
    from provarmor.manager.sqlite_store import open_sqlite_store

    return open_sqlite_store(path)
