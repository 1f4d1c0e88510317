"""Open a graph store from one setting: a path or URL names both the engine and the place.

    /var/lib/provarmor/graph.db         SQLite file (the embedded default)
    sqlite:////var/lib/provarmor/g.db   the same as a URL: SQLAlchemy's spelling, three
    sqlite:///graph.db                  slashes then the path (relative, or absolute)
    postgresql://user:pw@host/db        PostgreSQL (also ``postgres://``); ``?schema=name``
                                        puts the tables in that schema; ``pool_size=N``: the
                                        connections a process's stores share (default 4)

The PostgreSQL store is imported only when asked for, so the runtime needs psycopg only
where it uses PostgreSQL (``pip install 'provarmor[postgres]'``).
"""

from __future__ import annotations

import re
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from provarmor.model.errors import StorageError
from provarmor.storage.sqlite_graph import SqliteGraphStore

if TYPE_CHECKING:
    from provarmor.storage.postgres_graph import PostgresGraphStore

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def open_graph_store(url_or_path: str | Path) -> SqliteGraphStore | PostgresGraphStore:
    """The store ``url_or_path`` names; a :class:`StorageError` for an unknown scheme or a
    store that cannot be opened."""
    text = str(url_or_path)
    scheme = _SCHEME.match(text)
    if isinstance(url_or_path, Path) or scheme is None:
        return SqliteGraphStore(text)
    name = scheme.group(1).lower()
    if name == "sqlite":
        return SqliteGraphStore(_sqlite_path(text))
    if name in POSTGRES_SCHEMES:
        return _postgres_store(text)
    raise StorageError(
        f"unknown graph store scheme {name!r}: use a file path, sqlite:///path or "
        "postgresql://user@host/database"
    )


def _sqlite_path(url: str) -> str:
    """``sqlite:///g.db`` -> ``g.db``, ``sqlite:////abs/g.db`` -> ``/abs/g.db`` (SQLAlchemy)."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/" or "?" in rest:
        raise StorageError(
            "a sqlite URL is sqlite:///relative/path or sqlite:////absolute/path, "
            "with no host and no options",
            location=url,
        )
    return rest[1:]


def _postgres_store(url: str) -> PostgresGraphStore:
    try:
        module = import_module("provarmor.storage.postgres_graph")
    except ImportError as exc:
        if exc.name not in {"psycopg", "psycopg_binary", "psycopg_c"}:
            raise
        raise StorageError(
            "PostgreSQL stores need psycopg: pip install 'provarmor[postgres]'"
        ) from None
    store: PostgresGraphStore = module.PostgresGraphStore(url)
    return store
