"""SqlGraphStore: the provenance graph in SQL, one implementation for SQLite and PostgreSQL
(:mod:`provarmor.storage.sqlite_graph`, :mod:`provarmor.storage.postgres_graph` open it over
their :class:`~provarmor.storage.dialect.Dialect`).

Holds days of one host's history: nodes, reduced edges with their time spans, an index from
event id to edge (for tracing from an event), sensor gaps, and a record of every ingest (so
the same file is not ingested twice). Edges refer to nodes by an integer key (not the text
id): B-tree inserts on integer keys are about twice as fast as on text, and edges are the
bulk of what is written. A bounded cache maps node ids to keys; misses are looked up a batch
at a time.

Each :meth:`SqlGraphStore.apply` is one transaction that writes the delta a table at a time
by the dialect's bulk operations (PostgreSQL: binary COPY into staging tables merged by one
statement each; SQLite: one prepared statement run for every row). The store carries
``format_version`` in ``meta``; an unknown newer version is refused with a
:class:`StorageError`, older ones are upgraded by the functions in ``UPGRADES``.

Retention (:meth:`SqlGraphStore.prune`) deletes old edges, event index entries and the nodes
no edge refers to any more, a bounded step per transaction, through the time indexes of
format 2. An event's index entry is never newer than its edge's last event, so deleting
both by the same cutoff leaves no entry pointing at a deleted edge, and a node is deleted
only once no edge refers to it.
"""

# SQL text is assembled only from the column lists and table names of this module; every
# value is bound as a parameter.

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from provarmor.graph.builder import GraphDelta
from provarmor.graph.records import Edge, Node, NodeKind, merge_node
from provarmor.graph.store import GraphPrune, GraphStats, PruneCursor
from provarmor.model.errors import StorageError
from provarmor.storage.dialect import (
    Columns,
    Dialect,
    column_names,
    delete_where_in,
    like_literal,
    select_where_in,
)

FORMAT_VERSION = 2
KEY_CACHE_SIZE = 200_000
PAGE_ROWS = 5_000
"""Rows per round trip when iterating the whole graph."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    key {serial}, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, host TEXT NOT NULL,
    first_ts {int} NOT NULL, last_ts {int} NOT NULL, label TEXT NOT NULL, pid {int} NOT NULL,
    executable TEXT NOT NULL, command_line TEXT NOT NULL, "user" TEXT NOT NULL,
    parent TEXT NOT NULL, path TEXT NOT NULL, ip TEXT NOT NULL, port INTEGER NOT NULL,
    exited {bool} NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_by_first_ts ON nodes (first_ts, key);
CREATE TABLE IF NOT EXISTS edges (
    id {int} PRIMARY KEY, src {int} NOT NULL, dst {int} NOT NULL, action TEXT NOT NULL,
    first_ts {int} NOT NULL, last_ts {int} NOT NULL, count {int} NOT NULL,
    first_event TEXT NOT NULL, last_event TEXT NOT NULL, incomplete {bool} NOT NULL
);
CREATE INDEX IF NOT EXISTS edges_by_src ON edges (src);
CREATE INDEX IF NOT EXISTS edges_by_dst ON edges (dst);
CREATE TABLE IF NOT EXISTS event_index (
    event_hash {int} PRIMARY KEY, edge_id {int} NOT NULL, ts {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS gaps (host TEXT NOT NULL, ts {int} NOT NULL, lost {int} NOT NULL);
CREATE INDEX IF NOT EXISTS edges_by_last_ts ON edges (last_ts, id);
CREATE INDEX IF NOT EXISTS event_index_by_ts ON event_index (ts);
CREATE TABLE IF NOT EXISTS ingests (
    digest TEXT PRIMARY KEY, source TEXT NOT NULL, format TEXT NOT NULL,
    events {int} NOT NULL, rejected {int} NOT NULL, finished_at {int} NOT NULL
);
"""
"""The tables, with the dialect's type fields (:meth:`Dialect.ddl`)."""

NODE_COLUMNS: Columns = (
    ("id", "text"),
    ("kind", "text"),
    ("host", "text"),
    ("first_ts", "int8"),
    ("last_ts", "int8"),
    ("label", "text"),
    ("pid", "int8"),
    ("executable", "text"),
    ("command_line", "text"),
    ('"user"', "text"),
    ("parent", "text"),
    ("path", "text"),
    ("ip", "text"),
    ("port", "int4"),
    ("exited", "bool"),
)
EDGE_COLUMNS: Columns = (
    ("id", "int8"),
    ("src", "int8"),
    ("dst", "int8"),
    ("action", "text"),
    ("first_ts", "int8"),
    ("last_ts", "int8"),
    ("count", "int8"),
    ("first_event", "text"),
    ("last_event", "text"),
    ("incomplete", "bool"),
)
EDGE_UPDATE_COLUMNS: Columns = (
    ("id", "int8"),
    ("first_ts", "int8"),
    ("last_ts", "int8"),
    ("count", "int8"),
    ("last_event", "text"),
    ("incomplete", "bool"),
)
EVENT_COLUMNS: Columns = (("event_hash", "int8"), ("edge_id", "int8"), ("ts", "int8"))
GAP_COLUMNS: Columns = (("host", "text"), ("ts", "int8"), ("lost", "int8"))

META_COLUMNS: Columns = (("key", "text"), ("value", "text"))
INGEST_COLUMNS: Columns = (
    ("digest", "text"),
    ("source", "text"),
    ("format", "text"),
    ("events", "int8"),
    ("rejected", "int8"),
    ("finished_at", "int8"),
)


def _newer_or_known(column: str, *, unset: str = "''") -> str:
    return (
        f"{column} = CASE WHEN excluded.{column} <> {unset} THEN excluded.{column} "
        f"ELSE nodes.{column} END"
    )


_NODE_UPDATE = ", ".join(
    [
        "first_ts = CASE WHEN excluded.first_ts < nodes.first_ts THEN excluded.first_ts "
        "ELSE nodes.first_ts END",
        "last_ts = CASE WHEN excluded.last_ts > nodes.last_ts THEN excluded.last_ts "
        "ELSE nodes.last_ts END",
        _newer_or_known("label"),
        _newer_or_known("pid", unset="0"),
        _newer_or_known("executable"),
        _newer_or_known("command_line"),
        _newer_or_known('"user"'),
        _newer_or_known("parent"),
        "exited = nodes.exited OR excluded.exited",
    ]
)
"""How a stored node takes a new view of itself: the widest span, known values kept."""
_INGEST_UPDATE = ", ".join(f"{name} = excluded.{name}" for name, _ in INGEST_COLUMNS[1:])
# Endpoint ids by correlated lookups, not joins: PostgreSQL's planner, guessing hundreds of
# edges per node, would otherwise hash-join the whole node table for a five-edge answer.
_EDGE_VALUES = (
    "e.id, (SELECT n.id FROM nodes n WHERE n.key = e.src), "
    "(SELECT n.id FROM nodes n WHERE n.key = e.dst), e.action, e.first_ts, e.last_ts, e.count, "
    "e.first_event, e.last_event, e.incomplete"
)
_EDGE_SELECT = f"SELECT {_EDGE_VALUES} FROM edges e"
_EVENT_EDGE_SELECT = (
    f"SELECT {_EDGE_VALUES}, i.ts FROM event_index i JOIN edges e ON e.id = i.edge_id "
    "WHERE i.event_hash = ?"
)
_NODES = column_names(NODE_COLUMNS)
_NODE_SELECT = f"SELECT {_NODES} FROM nodes"
_NODE_PAGE = (
    f"SELECT {_NODES}, key FROM nodes WHERE (first_ts, key) > (?, ?) ORDER BY first_ts, key LIMIT ?"
)
_NODE_TEXT = " OR ".join(
    f"lower({column}) LIKE lower(?) ESCAPE '\\'" for column in ("label", "command_line", "path")
)

Row = Sequence[object]

TIME_INDEXES = """
CREATE INDEX IF NOT EXISTS edges_by_last_ts ON edges (last_ts, id);
CREATE INDEX IF NOT EXISTS event_index_by_ts ON event_index (ts)
"""
"""What format 2 adds: the indexes retention deletes by (also in :data:`SCHEMA`)."""


def upgrade_1_to_2(db: Dialect) -> None:
    db.execute_script(TIME_INDEXES)


UPGRADES: dict[int, Callable[[Dialect], None]] = {1: upgrade_1_to_2}
"""``{N: upgrade_N_to_N+1}``: applied in order, inside the opening transaction, to a store of
an older format (the same SQL on both engines)."""


def event_hash(event_id: str) -> int:
    """The event index key: 64 bits of BLAKE2b of the event id. Integer keys insert about
    twice as fast as text; a collision (odds ~1e-7 at 10M events) maps an id to another
    event's edge, which the caller sees as a wrong but real edge, never a crash."""
    return int.from_bytes(
        hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
        "little",
        signed=True,
    )


def _int(value: object) -> int:
    """An integer column or aggregate (PostgreSQL sums integers as ``numeric``)."""
    assert isinstance(value, int | Decimal), value
    return int(value)


# Booleans are written as 0 and 1: sqlite3 binds an exact int directly but a bool through
# its adapter lookup (a quarter slower per row), and PostgreSQL's binary COPY takes either.
def _node_row(node: Node) -> Row:
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


def _fold_nodes(nodes: Sequence[Node]) -> list[Row]:
    """One row per node id, folding repeats as successive upserts would (PostgreSQL refuses
    to upsert one row twice in one statement)."""
    folded: dict[str, Node] = {}
    for node in nodes:
        old = folded.get(node.id)
        folded[node.id] = node if old is None else merge_node(old, node)
    return [_node_row(node) for node in folded.values()]


# Rows become records by unpacking and keywords: ten times faster than ``dict(zip(..))``,
# and the lookups of a trace turn thousands of rows into records.
def _node_from_row(row: Sequence[Any]) -> Node:
    (
        node_id,
        kind,
        host,
        first_ts,
        last_ts,
        label,
        pid,
        executable,
        command_line,
        user,
        parent,
        path,
        ip,
        port,
        exited,
    ) = row
    return Node(
        id=node_id,
        kind=NodeKind(kind),
        host=host,
        first_ts=first_ts,
        last_ts=last_ts,
        label=label,
        pid=pid,
        executable=executable,
        command_line=command_line,
        user=user,
        parent=parent,
        path=path,
        ip=ip,
        port=port,
        exited=bool(exited),
    )


def _edge_from_row(row: Sequence[Any]) -> Edge:
    edge_id, src, dst, action, first_ts, last_ts, count, first_event, last_event, incomplete = row
    return Edge(
        id=edge_id,
        src=src,
        dst=dst,
        action=action,
        first_ts=first_ts,
        last_ts=last_ts,
        count=count,
        first_event=first_event,
        last_event=last_event,
        incomplete=bool(incomplete),
    )


class SqlGraphStore:
    """The GraphStore in SQL. One writer; readers may open the same store concurrently."""

    def __init__(self, dialect: Dialect) -> None:
        self._db = dialect
        self.path = dialect.location
        """Where the store is, for messages (a path, or the URL without its password)."""
        self._keys: dict[str, int] = {}
        self.key_cache_resets = 0
        """Times the node-key cache was full and cleared (each costs later lookups only)."""
        self._size_floor = 0
        """The measure a retention pass ended at over its size bound (:meth:`settle`)."""
        try:
            with dialect.setup():
                dialect.execute_script(dialect.ddl(SCHEMA))
                self._check_version()
        except BaseException:
            dialect.close()
            raise

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
            )
            return
        version = int(str(row[0]))
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
        with db.transaction():
            keys = self._merge_nodes(delta.nodes)
            self._insert_edges(delta.new_edges, keys)
            self._merge_edge_updates(delta.updated_edges)
            self._merge_events(delta.event_edges)
            if delta.gaps:
                db.load("gaps", GAP_COLUMNS, delta.gaps)
            if meta:
                db.upsert(
                    "meta",
                    META_COLUMNS,
                    list(meta.items()),
                    conflict="key",
                    update="value = excluded.value",
                )
        # Only keys of committed rows enter the cache.
        if len(self._keys) + len(keys) > KEY_CACHE_SIZE:
            self._keys.clear()
            self.key_cache_resets += 1
        self._keys.update(keys)

    def _merge_nodes(self, nodes: Sequence[Node]) -> dict[str, int]:
        if not nodes:
            return {}
        rows = self._db.upsert(
            "nodes",
            NODE_COLUMNS,
            _fold_nodes(nodes),
            conflict="id",
            update=_NODE_UPDATE,
            returning="id, key",
        )
        return {str(node_id): _int(key) for node_id, key in rows}

    def _insert_edges(self, edges: Sequence[Edge], keys: dict[str, int]) -> None:
        """Insert ``edges``, their endpoints' keys from ``keys`` (this batch's nodes; those
        looked up here are added), the cache, or else the table."""
        if not edges:
            return
        rows = self._edge_rows(edges, keys)
        if rows is None:  # an endpoint neither in this batch nor in the cache: rare
            self._look_up_keys(edges, keys)
            rows = self._edge_rows(edges, keys)
            assert rows is not None  # every endpoint was found, or an error raised
        self._db.load("edges", EDGE_COLUMNS, rows)

    def _edge_rows(self, edges: Sequence[Edge], keys: dict[str, int]) -> list[Row] | None:
        """The rows of ``edges``; ``None`` when an endpoint's key is not at hand."""
        known = self._keys
        rows: list[Row] = []
        for e in edges:
            src = keys.get(e.src) or known.get(e.src)
            dst = keys.get(e.dst) or known.get(e.dst)
            if src is None or dst is None:
                return None
            rows.append(
                (
                    e.id,
                    src,
                    dst,
                    e.action,
                    e.first_ts,
                    e.last_ts,
                    e.count,
                    e.first_event,
                    e.last_event,
                    int(e.incomplete),
                )
            )
        return rows

    def _look_up_keys(self, edges: Sequence[Edge], keys: dict[str, int]) -> None:
        """Add to ``keys`` the stored keys of endpoints not in it or the cache; an endpoint
        that is not stored either is an error."""
        known = self._keys
        endpoints = {name for edge in edges for name in (edge.src, edge.dst)}
        missing = sorted(name for name in endpoints if name not in keys and name not in known)
        found = select_where_in(self._db, "SELECT id, key FROM nodes", "id", missing)
        keys.update((str(node_id), _int(key)) for node_id, key in found)
        unknown = [name for name in missing if name not in keys]
        if unknown:
            raise StorageError(f"edge refers to unknown node {unknown[0]!r}", location=self.path)

    def _merge_edge_updates(self, edges: Sequence[Edge]) -> None:
        if edges:
            self._db.update(
                "edges",
                EDGE_UPDATE_COLUMNS,
                [
                    (e.id, e.first_ts, e.last_ts, e.count, e.last_event, int(e.incomplete))
                    for e in edges
                ],
            )

    def _merge_events(self, event_edges: Sequence[tuple[str, int, int]]) -> None:
        if event_edges:
            self._db.upsert(
                "event_index",
                EVENT_COLUMNS,
                [(event_hash(event), edge, ts) for event, edge, ts in event_edges],
                conflict="event_hash",
                update="edge_id = excluded.edge_id, ts = excluded.ts",
            )

    def meta(self, key: str) -> str | None:
        """A value written with :meth:`apply`'s ``meta`` (``None``: never written)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def next_edge_id(self) -> int:
        return _int(self._one("SELECT coalesce(max(id), 0) + 1 FROM edges")[0])

    def ingested(self, digest: str) -> tuple[str, int] | None:
        """``(source, events)`` if a file with this digest was ingested before."""
        row = self._db.execute(
            "SELECT source, events FROM ingests WHERE digest = ?", (digest,)
        ).fetchone()
        return (str(row[0]), _int(row[1])) if row else None

    def record_ingest(  # noqa: PLR0913
        self, *, digest: str, source: str, format: str, events: int, rejected: int, finished_at: int
    ) -> None:
        with self._db.transaction():
            self._db.upsert(
                "ingests",
                INGEST_COLUMNS,
                [(digest, source, format, events, rejected, finished_at)],
                conflict="digest",
                update=_INGEST_UPDATE,
            )

    # ------------------------------------------------------------------ retention
    def prune(
        self, before_ts: int, *, keep: frozenset[str], rows: int, cursor: PruneCursor
    ) -> GraphPrune:
        """Edges and index entries first; once none is left, the nodes they referred to."""
        db = self._db
        edges = events = gaps = 0
        names: tuple[str, ...] = ()
        with db.transaction():
            kept = {
                _int(row[0])
                for row in select_where_in(db, "SELECT key FROM nodes", "id", sorted(keep))
            }
            if not cursor.edges_done:
                edges, events = self._prune_edges(before_ts, kept, rows, cursor)
            else:
                names = self._prune_nodes(before_ts, kept, rows, cursor)
                if cursor.nodes_done:
                    gaps = db.execute("DELETE FROM gaps WHERE ts < ?", (before_ts,)).rowcount
        for name in names:
            self._keys.pop(name, None)
        return GraphPrune(
            edges=edges, events=events, nodes=names, gaps=max(gaps, 0), done=cursor.nodes_done
        )

    def _prune_edges(
        self, before_ts: int, kept: set[int], rows: int, cursor: PruneCursor
    ) -> tuple[int, int]:
        edges = self._db.execute(
            "SELECT last_ts, id, src, dst FROM edges WHERE last_ts < ? "
            "AND (last_ts, id) > (?, ?) ORDER BY last_ts, id LIMIT ?",
            (before_ts, *cursor.edge, rows),
        ).fetchall()
        doomed = [_int(e[1]) for e in edges if not (_int(e[2]) in kept and _int(e[3]) in kept)]
        delete_where_in(self._db, "edges", "id", doomed)
        events = self._db.execute(
            "DELETE FROM event_index WHERE event_hash IN "
            "(SELECT event_hash FROM event_index WHERE ts < ? LIMIT ?)",
            (before_ts, rows),
        ).rowcount
        if edges:
            cursor.edge = (_int(edges[-1][0]), _int(edges[-1][1]))
        cursor.edges_done = len(edges) < rows and events < rows
        return len(doomed), max(events, 0)

    def _prune_nodes(
        self, before_ts: int, kept: set[int], rows: int, cursor: PruneCursor
    ) -> tuple[str, ...]:
        nodes = self._db.execute(
            "SELECT n.first_ts, n.key, n.id FROM nodes n WHERE n.first_ts < ? "
            "AND (n.first_ts, n.key) > (?, ?) AND n.last_ts < ? "
            "AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.src = n.key) "
            "AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.dst = n.key) "
            "ORDER BY n.first_ts, n.key LIMIT ?",
            (before_ts, *cursor.node, before_ts, rows),
        ).fetchall()
        gone = [row for row in nodes if _int(row[1]) not in kept]
        delete_where_in(self._db, "nodes", "key", [_int(row[1]) for row in gone])
        if nodes:
            cursor.node = (_int(nodes[-1][0]), _int(nodes[-1][1]))
        cursor.nodes_done = len(nodes) < rows
        return tuple(str(row[2]) for row in gone)

    def size_cutoff(self, max_bytes: int) -> int:
        used = self._db.used_bytes()
        limit = max(max_bytes, self._size_floor)
        if not max_bytes or used <= limit:
            return 0
        edges = self.edge_count()
        excess = -(-edges * (used - limit) // used)  # rounded up
        row = self._db.execute(
            "SELECT last_ts FROM edges ORDER BY last_ts, id LIMIT 1 OFFSET ?",
            (min(excess, edges) - 1,),
        ).fetchone()
        return _int(row[0]) + 1 if row else 0

    def settle(self, max_bytes: int) -> None:
        self._size_floor = max(self._db.used_bytes(), max_bytes) if max_bytes else 0

    def reclaim(self, *, pages: int) -> int:
        return self._db.reclaim(pages=pages)

    def vacuum(self) -> None:
        self._db.vacuum(["edges", "event_index", "nodes", "gaps"])

    # ------------------------------------------------------------------ reads
    def _one(self, query: str) -> Row:
        row = self._db.execute(query).fetchone()
        assert row is not None  # aggregate queries always return a row
        return row

    def _all(self, query: str, params: Sequence[object] = ()) -> Sequence[Row]:
        return self._db.execute(query, params).fetchall()

    def node(self, node_id: str) -> Node | None:
        rows = self._all(f"{_NODE_SELECT} WHERE id = ?", (node_id,))
        return _node_from_row(rows[0]) if rows else None

    def nodes_of(self, node_ids: Iterable[str]) -> dict[str, Node]:
        rows = select_where_in(self._db, _NODE_SELECT, "id", sorted(set(node_ids)))
        return {node.id: node for node in map(_node_from_row, rows)}

    def _edges(self, column: str, node_id: str) -> list[Edge]:
        rows = self._all(
            f"{_EDGE_SELECT} WHERE e.{column} = (SELECT key FROM nodes WHERE id = ?) ORDER BY e.id",
            (node_id,),
        )
        return [_edge_from_row(row) for row in rows]

    def in_edges(self, node_id: str) -> list[Edge]:
        return self._edges("dst", node_id)

    def out_edges(self, node_id: str) -> list[Edge]:
        return self._edges("src", node_id)

    def event_edge(self, event_id: str) -> tuple[Edge, int] | None:
        rows = self._all(_EVENT_EDGE_SELECT, (event_hash(event_id),))
        return (_edge_from_row(rows[0][:-1]), _int(rows[0][-1])) if rows else None

    def find_nodes(self, text: str, *, limit: int = 20) -> list[Node]:
        exact = self.node(text)
        if exact is not None:
            return [exact]
        rows = self._all(
            f"{_NODE_SELECT} WHERE path = ? ORDER BY first_ts, key LIMIT ?", (text, limit)
        )
        if not rows:
            pattern = f"%{like_literal(text)}%"
            rows = self._all(
                f"{_NODE_SELECT} WHERE {_NODE_TEXT} ORDER BY first_ts, key LIMIT ?",
                (pattern, pattern, pattern, limit),
            )
        return [_node_from_row(row) for row in rows]

    def stats(self) -> GraphStats:
        kinds = self._all("SELECT kind, count(*) FROM nodes GROUP BY kind")
        actions = self._all("SELECT action, sum(count) FROM edges GROUP BY action")
        first, last = self._one("SELECT min(first_ts), max(last_ts) FROM edges")
        return GraphStats(
            nodes_by_kind={str(k): _int(v) for k, v in kinds},
            edges_by_action={str(k): _int(v) for k, v in actions},
            events_indexed=_int(self._one("SELECT count(*) FROM event_index")[0]),
            gaps=_int(self._one("SELECT count(*) FROM gaps")[0]),
            first_ts=_int(first or 0),
            last_ts=_int(last or 0),
        )

    def edge_count(self) -> int:
        return _int(self._one("SELECT count(*) FROM edges")[0])

    def last_edge(self, *, action: str) -> Edge | None:
        """The most recent edge of one action (the demo's starting point)."""
        rows = self._all(
            f"{_EDGE_SELECT} WHERE e.action = ? ORDER BY e.last_ts DESC, e.id DESC LIMIT 1",
            (action,),
        )
        return _edge_from_row(rows[0]) if rows else None

    def iter_nodes(self) -> Iterator[Node]:
        """Every node, oldest first, fetched a page at a time (the connection stays free for
        other calls between pages)."""
        after: tuple[object, object] = (-(2**63), -(2**63))
        while rows := self._all(_NODE_PAGE, (*after, PAGE_ROWS)):
            for row in rows:
                yield _node_from_row(row[:-1])
            after = (rows[-1][3], rows[-1][-1])

    def iter_edges(self) -> Iterator[Edge]:
        after: object = -(2**63)
        while rows := self._all(
            f"{_EDGE_SELECT} WHERE e.id > ? ORDER BY e.id LIMIT ?", (after, PAGE_ROWS)
        ):
            for row in rows:
                yield _edge_from_row(row)
            after = rows[-1][0]
