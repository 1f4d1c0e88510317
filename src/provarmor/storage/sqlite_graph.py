"""SqliteGraphStore: the provenance graph persisted in one SQLite file (WAL mode).

Edges refer to nodes by an integer key (not the text id): B-tree inserts on integer keys are
about twice as fast as on text, and edges are the bulk of what is written. A bounded cache
maps node ids to keys; a miss costs one indexed lookup.

Holds days of one host's history: nodes, reduced edges with their time spans, an index from
event id to edge (for tracing from an event), sensor gaps, and a record of every ingest (so
the same file is not ingested twice). The file carries ``format_version`` in ``meta``; an
unknown newer version is refused with a :class:`StorageError`, older ones are upgraded by
the functions in ``UPGRADES``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from provarmor.graph.builder import GraphDelta
from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.graph.store import GraphStats
from provarmor.model.errors import StorageError
from provarmor.storage.private import private_file

FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, host TEXT NOT NULL,
    first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, label TEXT NOT NULL,
    pid INTEGER NOT NULL, executable TEXT NOT NULL, command_line TEXT NOT NULL,
    user TEXT NOT NULL, parent TEXT NOT NULL, path TEXT NOT NULL, ip TEXT NOT NULL,
    port INTEGER NOT NULL, exited INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS edges (
    id INTEGER PRIMARY KEY, src INTEGER NOT NULL, dst INTEGER NOT NULL, action TEXT NOT NULL,
    first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, count INTEGER NOT NULL,
    first_event TEXT NOT NULL, last_event TEXT NOT NULL, incomplete INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS edges_by_src ON edges (src);
CREATE INDEX IF NOT EXISTS edges_by_dst ON edges (dst);
CREATE TABLE IF NOT EXISTS event_index (
    event_hash INTEGER PRIMARY KEY, edge_id INTEGER NOT NULL, ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS gaps (host TEXT NOT NULL, ts INTEGER NOT NULL, lost INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ingests (
    digest TEXT PRIMARY KEY, source TEXT NOT NULL, format TEXT NOT NULL,
    events INTEGER NOT NULL, rejected INTEGER NOT NULL, finished_at INTEGER NOT NULL
);
"""

_NODE_COLUMNS = (
    "id",
    "kind",
    "host",
    "first_ts",
    "last_ts",
    "label",
    "pid",
    "executable",
    "command_line",
    "user",
    "parent",
    "path",
    "ip",
    "port",
    "exited",
)
_EDGE_COLUMNS = (
    "id",
    "src",
    "dst",
    "action",
    "first_ts",
    "last_ts",
    "count",
    "first_event",
    "last_event",
    "incomplete",
)
_UPSERT_NODE = f"""
INSERT INTO nodes ({", ".join(_NODE_COLUMNS)}) VALUES ({", ".join("?" * len(_NODE_COLUMNS))})
ON CONFLICT (id) DO UPDATE SET
    first_ts = min(first_ts, excluded.first_ts),
    last_ts = max(last_ts, excluded.last_ts),
    label = CASE WHEN excluded.label != '' THEN excluded.label ELSE label END,
    pid = CASE WHEN excluded.pid != 0 THEN excluded.pid ELSE pid END,
    executable = CASE WHEN excluded.executable != '' THEN excluded.executable ELSE executable END,
    command_line = CASE WHEN excluded.command_line != '' THEN excluded.command_line
                   ELSE command_line END,
    user = CASE WHEN excluded.user != '' THEN excluded.user ELSE user END,
    parent = CASE WHEN excluded.parent != '' THEN excluded.parent ELSE parent END,
    exited = max(exited, excluded.exited)
RETURNING key
"""
_INSERT_EDGE = (
    f"INSERT INTO edges ({', '.join(_EDGE_COLUMNS)}) VALUES ({', '.join('?' * len(_EDGE_COLUMNS))})"
)
_EDGE_SELECT = (
    "SELECT e.id, s.id, d.id, e.action, e.first_ts, e.last_ts, e.count, e.first_event, "
    "e.last_event, e.incomplete FROM edges e JOIN nodes s ON s.key = e.src "
    "JOIN nodes d ON d.key = e.dst"
)
_NODE_SELECT = f"SELECT {', '.join(_NODE_COLUMNS)} FROM nodes"
KEY_CACHE_SIZE = 200_000
_UPDATE_EDGE = (
    "UPDATE edges SET first_ts = ?, last_ts = ?, count = ?, last_event = ?, incomplete = ? "
    "WHERE id = ?"
)

UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {}
"""``{N: upgrade_N_to_N+1}``: applied in order to files of an older format version."""


def event_hash(event_id: str) -> int:
    """The event index key: 64 bits of BLAKE2b of the event id. Integer keys insert about
    twice as fast as text; a collision (odds ~1e-7 at 10M events) maps an id to another
    event's edge, which the caller sees as a wrong but real edge, never a crash."""
    return int.from_bytes(
        hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
        "little",
        signed=True,
    )


def _node_row(node: Node) -> tuple[object, ...]:
    return (
        node.id,
        node.kind.value,
        node.host,
        node.first_ts,
        node.last_ts,
        node.label,
        node.pid,
        node.executable,
        node.command_line,
        node.user,
        node.parent,
        node.path,
        node.ip,
        node.port,
        int(node.exited),
    )


def _edge_row(edge: Edge, src: int, dst: int) -> tuple[object, ...]:
    return (
        edge.id,
        src,
        dst,
        edge.action,
        edge.first_ts,
        edge.last_ts,
        edge.count,
        edge.first_event,
        edge.last_event,
        int(edge.incomplete),
    )


def _node_from_row(row: tuple[object, ...]) -> Node:
    values = dict(zip(_NODE_COLUMNS, row, strict=True))
    values["kind"] = NodeKind(str(values["kind"]))
    values["exited"] = bool(values["exited"])
    return Node(**values)  # type: ignore[arg-type]


def _edge_from_row(row: tuple[object, ...]) -> Edge:
    values = dict(zip(_EDGE_COLUMNS, row, strict=True))
    values["incomplete"] = bool(values["incomplete"])
    return Edge(**values)  # type: ignore[arg-type]


class SqliteGraphStore:
    """The GraphStore on SQLite. One writer; readers may open the same file concurrently."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:" and not self.path.startswith("file:"):
                private_file(Path(self.path))
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA cache_size=-65536")
            self._db.executescript(_SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StorageError(f"cannot open graph store: {exc}", location=self.path) from None
        self._check_version()
        self._keys: dict[str, int] = {}
        self.key_cache_resets = 0
        """Times the node-key cache was full and cleared (each costs later lookups only)."""

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
            )
            return
        version = int(row[0])
        if version > FORMAT_VERSION:
            raise StorageError(
                f"graph store format {version} is newer than this build reads ({FORMAT_VERSION})",
                location=self.path,
            )
        while version < FORMAT_VERSION:
            UPGRADES[version](self._db)
            version += 1
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'format_version'", (str(version),)
            )

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ writes
    def apply(self, delta: GraphDelta, *, meta: dict[str, str] | None = None) -> None:
        """Write one batch in one transaction, together with ``meta`` entries (a consumer's
        input position, so that position and data commit or roll back together)."""
        db = self._db
        fresh: dict[str, int] = {}
        try:
            db.execute("BEGIN")
            if len(self._keys) + len(delta.nodes) > KEY_CACHE_SIZE:
                self._keys.clear()
                self.key_cache_resets += 1
            for node in delta.nodes:
                fresh[node.id] = db.execute(_UPSERT_NODE, _node_row(node)).fetchone()[0]

            def key(node_id: str) -> int:
                found = fresh.get(node_id)
                return found if found is not None else self._key(node_id)

            db.executemany(
                _INSERT_EDGE,
                [_edge_row(edge, key(edge.src), key(edge.dst)) for edge in delta.new_edges],
            )
            db.executemany(
                _UPDATE_EDGE,
                [
                    (e.first_ts, e.last_ts, e.count, e.last_event, int(e.incomplete), e.id)
                    for e in delta.updated_edges
                ],
            )
            if delta.event_edges:
                db.executemany(
                    "INSERT OR REPLACE INTO event_index (event_hash, edge_id, ts) VALUES (?, ?, ?)",
                    [(event_hash(e), edge, ts) for e, edge, ts in delta.event_edges],
                )
            if delta.gaps:
                db.executemany("INSERT INTO gaps (host, ts, lost) VALUES (?, ?, ?)", delta.gaps)
            if meta:
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")  # whatever failed, the connection stays usable
            if isinstance(exc, sqlite3.DatabaseError | OverflowError):
                raise StorageError(f"cannot write graph batch: {exc}", location=self.path) from None
            raise
        self._keys.update(fresh)  # only keys of committed rows are cached

    def _key(self, node_id: str) -> int:
        key = self._keys.get(node_id)
        if key is None:
            row = self._db.execute("SELECT key FROM nodes WHERE id = ?", (node_id,)).fetchone()
            if row is None:
                raise StorageError(f"edge refers to unknown node {node_id!r}", location=self.path)
            key = self._keys[node_id] = int(row[0])
        return key

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def next_edge_id(self) -> int:
        row = self._db.execute("SELECT coalesce(max(id), 0) + 1 FROM edges").fetchone()
        return int(row[0])

    def ingested(self, digest: str) -> tuple[str, int] | None:
        """``(source, events)`` if a file with this digest was ingested before."""
        row = self._db.execute(
            "SELECT source, events FROM ingests WHERE digest = ?", (digest,)
        ).fetchone()
        return (str(row[0]), int(row[1])) if row else None

    def record_ingest(  # noqa: PLR0913
        self, *, digest: str, source: str, format: str, events: int, rejected: int, finished_at: int
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO ingests VALUES (?, ?, ?, ?, ?, ?)",
            (digest, source, format, events, rejected, finished_at),
        )

    # ------------------------------------------------------------------ reads
    def node(self, node_id: str) -> Node | None:
        row = self._db.execute(f"{_NODE_SELECT} WHERE id = ?", (node_id,)).fetchone()
        return _node_from_row(row) if row else None

    def _edges(self, column: str, node_id: str) -> list[Edge]:
        rows = self._db.execute(
            f"{_EDGE_SELECT} WHERE e.{column} = (SELECT key FROM nodes WHERE id = ?) ORDER BY e.id",
            (node_id,),
        ).fetchall()
        return [_edge_from_row(row) for row in rows]

    def in_edges(self, node_id: str) -> list[Edge]:
        return self._edges("dst", node_id)

    def out_edges(self, node_id: str) -> list[Edge]:
        return self._edges("src", node_id)

    def event_edge(self, event_id: str) -> tuple[Edge, int] | None:
        row = self._db.execute(
            "SELECT edge_id, ts FROM event_index WHERE event_hash = ?", (event_hash(event_id),)
        ).fetchone()
        if row is None:
            return None
        edge_row = self._db.execute(f"{_EDGE_SELECT} WHERE e.id = ?", (row[0],)).fetchone()
        return (_edge_from_row(edge_row), int(row[1])) if edge_row else None

    def find_nodes(self, text: str, *, limit: int = 20) -> list[Node]:
        exact = self.node(text)
        if exact is not None:
            return [exact]
        rows = self._db.execute(
            f"{_NODE_SELECT} WHERE path = ? ORDER BY first_ts LIMIT ?", (text, limit)
        ).fetchall()
        if rows:
            return [_node_from_row(row) for row in rows]
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._db.execute(
            f"{_NODE_SELECT} WHERE label LIKE ?1 ESCAPE '\\' "
            "OR command_line LIKE ?1 ESCAPE '\\' OR path LIKE ?1 ESCAPE '\\' "
            "ORDER BY first_ts LIMIT ?2",
            (pattern, limit),
        ).fetchall()
        return [_node_from_row(row) for row in rows]

    def stats(self) -> GraphStats:
        db = self._db
        kinds = dict(db.execute("SELECT kind, count(*) FROM nodes GROUP BY kind").fetchall())
        actions = dict(
            db.execute("SELECT action, sum(count) FROM edges GROUP BY action").fetchall()
        )
        first, last = db.execute("SELECT min(first_ts), max(last_ts) FROM edges").fetchone()
        (events,) = db.execute("SELECT count(*) FROM event_index").fetchone()
        (gaps,) = db.execute("SELECT count(*) FROM gaps").fetchone()
        return GraphStats(
            nodes_by_kind={str(k): int(v) for k, v in kinds.items()},
            edges_by_action={str(k): int(v) for k, v in actions.items()},
            events_indexed=int(events),
            gaps=int(gaps),
            first_ts=int(first or 0),
            last_ts=int(last or 0),
        )

    def edge_count(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM edges").fetchone()
        return int(count)

    def last_edge(self, *, action: str) -> Edge | None:
        """The most recent edge of one action (the demo's starting point)."""
        row = self._db.execute(
            f"{_EDGE_SELECT} WHERE e.action = ? ORDER BY e.last_ts DESC, e.id DESC LIMIT 1",
            (action,),
        ).fetchone()
        return _edge_from_row(row) if row else None

    def iter_nodes(self) -> Iterator[Node]:
        cursor = self._db.execute(f"{_NODE_SELECT} ORDER BY first_ts")
        for row in cursor:
            yield _node_from_row(row)

    def iter_edges(self) -> Iterator[Edge]:
        cursor = self._db.execute(f"{_EDGE_SELECT} ORDER BY e.id")
        for row in cursor:
            yield _edge_from_row(row)
