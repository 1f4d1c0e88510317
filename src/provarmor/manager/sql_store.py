"""SqlFindingsStore: the findings store in SQL, one implementation for SQLite and PostgreSQL.

The SQL is the common subset of both engines (``ON CONFLICT`` upserts, integer division for
time buckets, ``lower(..) LIKE .. ESCAPE`` for case-insensitive literal search); a
:class:`~provarmor.storage.dialect.Dialect` supplies what differs: the connection, the
placeholder style, the auto-increment key and how a write transaction begins. Calls are
serialised behind a lock: FastAPI calls the store from worker threads (on PostgreSQL the
statements run over the process's pool of connections, shared with the host graphs).
"""

# SQL text is assembled only from the column lists and table names of this module; every
# value is bound as a parameter.
# ruff: noqa: S608

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from provarmor.manager import sql_actions, sql_exceptions, sql_retention
from provarmor.manager.actions import ActionAuditEntry, ActionRecord, ActionState, Execution
from provarmor.manager.auth import Role
from provarmor.manager.exceptions import AuditEntry, ExceptionRecord, ExceptionState
from provarmor.manager.store import (
    ActionQuery,
    AgentRecord,
    AlertQuery,
    AlertRow,
    BatchCommit,
    Checkpoint,
    EventQuery,
    EventRow,
    FindingsCutoffs,
    FindingsPrune,
    HostRecord,
    IncidentQuery,
    IncidentRow,
    Note,
    StatusChange,
    TimelineBucket,
    TokenRecord,
)
from provarmor.model.errors import StorageError
from provarmor.storage.dialect import Columns, Dialect, like_literal, select_where_in

FORMAT_VERSION = 5
SIZE_ROUNDS = 5
"""Rounds of deletes one retention pass makes to bring the store under its size bound."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, role TEXT NOT NULL, salt TEXT NOT NULL, digest TEXT NOT NULL,
    created_ns BIGINT NOT NULL, expires_ns BIGINT NOT NULL, used_ns BIGINT NOT NULL,
    label TEXT NOT NULL, last_used_ns BIGINT NOT NULL DEFAULT 0,
    revoked_ns BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, host_id TEXT NOT NULL, hostname TEXT NOT NULL,
    enrolled_ns BIGINT NOT NULL, acked_sequence BIGINT NOT NULL, last_seen_ns BIGINT NOT NULL,
    status_json TEXT NOT NULL, status_ns BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS agents_by_host ON agents (host_id);
CREATE TABLE IF NOT EXISTS batches (
    agent_id TEXT NOT NULL, sequence BIGINT NOT NULL, received_ns BIGINT NOT NULL,
    events BIGINT NOT NULL, rejected BIGINT NOT NULL, PRIMARY KEY (agent_id, sequence)
);
CREATE TABLE IF NOT EXISTS events (
    key {serial}, host TEXT NOT NULL, ts BIGINT NOT NULL, event_id TEXT NOT NULL,
    action TEXT NOT NULL, process TEXT NOT NULL, executable TEXT NOT NULL,
    command_line TEXT NOT NULL, file_path TEXT NOT NULL, remote TEXT NOT NULL, json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_host_ts ON events (host, ts);
CREATE INDEX IF NOT EXISTS events_by_process ON events (process);
CREATE TABLE IF NOT EXISTS alerts (
    host TEXT NOT NULL, id TEXT NOT NULL, rule_id TEXT NOT NULL, title TEXT NOT NULL,
    level TEXT NOT NULL, detector TEXT NOT NULL, first_ts BIGINT NOT NULL,
    last_ts BIGINT NOT NULL, score DOUBLE PRECISION NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (host, id)
);
CREATE INDEX IF NOT EXISTS alerts_by_ts ON alerts (first_ts);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, engine_id TEXT NOT NULL, severity TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, title TEXT NOT NULL,
    first_ts BIGINT NOT NULL, last_ts BIGINT NOT NULL, updated_ts BIGINT NOT NULL,
    version BIGINT NOT NULL, json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_by_ts ON incidents (first_ts);
CREATE TABLE IF NOT EXISTS checkpoints (
    host TEXT PRIMARY KEY, agent_id TEXT NOT NULL, sequence BIGINT NOT NULL,
    written_ns BIGINT NOT NULL, data {bytes} NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_notes (
    key {serial}, incident_id TEXT NOT NULL, ts_ns BIGINT NOT NULL, author TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_changes (
    key {serial}, incident_id TEXT NOT NULL, ts_ns BIGINT NOT NULL, author TEXT NOT NULL,
    old TEXT NOT NULL, new TEXT NOT NULL
);
"""
"""The tables of a new store (with :data:`~provarmor.manager.sql_exceptions.TABLES` and
:data:`~provarmor.manager.sql_actions.TABLES`); older
stores are brought to :data:`FORMAT_VERSION` by :data:`UPGRADES`."""

_TOKEN_COLUMNS = (
    "id, role, salt, digest, created_ns, expires_ns, used_ns, label, last_used_ns, revoked_ns"  # noqa: S105 (column names)
)
_AGENT_COLUMNS = (
    "id, host_id, hostname, enrolled_ns, acked_sequence, last_seen_ns, status_json, status_ns"
)
_EVENT_COLUMNS = (
    "host, ts, event_id, action, process, executable, command_line, file_path, remote, json"
)
_EVENT_LOAD_COLUMNS: Columns = [
    (name, "int8" if name == "ts" else "text") for name in _EVENT_COLUMNS.split(", ")
]
_CHECKPOINT_COLUMNS = "host, agent_id, sequence, written_ns, data"
_CHECKPOINT_UPSERT = (
    f"INSERT INTO checkpoints ({_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (host) DO UPDATE SET agent_id = excluded.agent_id, "
    "sequence = excluded.sequence, written_ns = excluded.written_ns, data = excluded.data"
)
_ALERT_COLUMNS = "host, id, rule_id, title, level, detector, first_ts, last_ts, score, json"
_INCIDENT_COLUMNS = (
    "id, host, engine_id, severity, score, status, title, first_ts, last_ts, updated_ts, "
    "version, json"
)


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _str(value: object) -> str:
    assert isinstance(value, str)
    return value


def _token(row: Sequence[object]) -> TokenRecord:
    return TokenRecord(
        id=_str(row[0]),
        role=Role(_str(row[1])),
        salt=_str(row[2]),
        digest=_str(row[3]),
        created_ns=_int(row[4]),
        expires_ns=_int(row[5]),
        used_ns=_int(row[6]),
        label=_str(row[7]),
        last_used_ns=_int(row[8]),
        revoked_ns=_int(row[9]),
    )


def _agent(row: Sequence[object]) -> AgentRecord:
    return AgentRecord(
        id=_str(row[0]),
        host_id=_str(row[1]),
        hostname=_str(row[2]),
        enrolled_ns=_int(row[3]),
        acked_sequence=_int(row[4]),
        last_seen_ns=_int(row[5]),
        status_json=_str(row[6]),
        status_ns=_int(row[7]),
    )


def _event(row: Sequence[object]) -> EventRow:
    text = [_str(value) for value in row[2:]]
    return EventRow(
        host=_str(row[0]),
        ts=_int(row[1]),
        event_id=text[0],
        action=text[1],
        process=text[2],
        executable=text[3],
        command_line=text[4],
        file_path=text[5],
        remote=text[6],
        json=text[7],
    )


def _alert(row: Sequence[object]) -> AlertRow:
    score = row[8]
    assert isinstance(score, float | int)
    return AlertRow(
        host=_str(row[0]),
        id=_str(row[1]),
        rule_id=_str(row[2]),
        title=_str(row[3]),
        level=_str(row[4]),
        detector=_str(row[5]),
        first_ts=_int(row[6]),
        last_ts=_int(row[7]),
        score=float(score),
        json=_str(row[9]),
    )


def _incident(row: Sequence[object]) -> IncidentRow:
    score = row[4]
    assert isinstance(score, float | int)
    return IncidentRow(
        id=_str(row[0]),
        host=_str(row[1]),
        engine_id=_str(row[2]),
        severity=_str(row[3]),
        score=float(score),
        status=_str(row[5]),
        title=_str(row[6]),
        first_ts=_int(row[7]),
        last_ts=_int(row[8]),
        updated_ts=_int(row[9]),
        version=_int(row[10]),
        json=_str(row[11]),
    )


def upgrade_1_to_2(db: Dialect) -> None:
    """Format 2 records when each token was last used and whether it was revoked."""
    db.execute("ALTER TABLE tokens ADD COLUMN last_used_ns BIGINT NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE tokens ADD COLUMN revoked_ns BIGINT NOT NULL DEFAULT 0")


def upgrade_2_to_3(db: Dialect) -> None:
    """Format 3 adds analysts' exceptions and their audit trail."""
    db.execute_script(db.ddl(sql_exceptions.TABLES))


def upgrade_3_to_4(db: Dialect) -> None:
    """Format 4 adds response actions (and their commands) and their audit trail."""
    db.execute_script(db.ddl(sql_actions.TABLES))


def upgrade_4_to_5(db: Dialect) -> None:
    """Format 5 keeps each host's analysis checkpoint (its table is in :data:`SCHEMA`, made
    before the upgrades run: nothing to change)."""


UPGRADES: dict[int, Callable[[Dialect], None]] = {
    1: upgrade_1_to_2,
    2: upgrade_2_to_3,
    3: upgrade_3_to_4,
    4: upgrade_4_to_5,
}
"""``{N: upgrade_N_to_N+1}``: applied in order, inside the opening transaction, to a store of
an older format (the same SQL on both engines)."""


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


class SqlFindingsStore:
    """:class:`provarmor.manager.store.FindingsStore` over a :class:`Dialect`."""

    def __init__(self, dialect: Dialect) -> None:
        self._db = dialect
        self._lock = threading.Lock()
        self.location = dialect.location
        self._size_floor = 0
        """Bytes the size bound's deletes could not bring the measure under (see
        :meth:`_prune_for_size`)."""
        with self._lock, self._db.setup():
            self._db.execute_script(dialect.ddl(SCHEMA))
            self._check_version()

    def _check_version(self) -> None:
        """Mark a new store with :data:`FORMAT_VERSION`; upgrade an older one; refuse a newer
        one (or an unknown value)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        if row is None:
            # a new store: today's tables at today's format
            upgrade_2_to_3(self._db)
            upgrade_3_to_4(self._db)
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
            )
            return
        text = _str(row[0])
        version = int(text) if text.isdigit() else 0
        if not 1 <= version <= FORMAT_VERSION:
            raise StorageError(
                f"findings store format {text} is not supported (this build reads "
                f"{FORMAT_VERSION} and upgrades older ones)",
                location=self.location,
            )
        while version < FORMAT_VERSION:
            UPGRADES[version](self._db)
            version += 1
        self._db.execute(
            "UPDATE meta SET value = ? WHERE key = 'format_version'", (str(FORMAT_VERSION),)
        )

    @contextmanager
    def _write(self) -> Iterator[None]:
        with self._lock, self._db.transaction():
            yield

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # tokens and agents

    def add_token(self, token: TokenRecord) -> None:
        with self._write():
            self._insert_token(token)

    def _insert_token(self, token: TokenRecord) -> None:
        self._db.execute(
            f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *(token.id, token.role.value, token.salt, token.digest, token.created_ns),
                *(token.expires_ns, token.used_ns, token.label, token.last_used_ns),
                token.revoked_ns,
            ),
        )

    def tokens(self) -> list[TokenRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created_ns, id"
            ).fetchall()
        return [_token(row) for row in rows]

    def revoke_token(self, token_id: str, *, now_ns: int) -> bool:
        with self._write():
            cursor = self._db.execute(
                "UPDATE tokens SET revoked_ns = ? WHERE id = ? AND revoked_ns = 0",
                (now_ns, token_id),
            )
            return cursor.rowcount == 1

    def touch_token(self, token_id: str, *, now_ns: int) -> bool:
        with self._write():
            cursor = self._db.execute(
                "UPDATE tokens SET last_used_ns = ? WHERE id = ?", (now_ns, token_id)
            )
            return cursor.rowcount == 1

    def token(self, token_id: str) -> TokenRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE id = ?", (token_id,)
            ).fetchone()
        return None if row is None else _token(row)

    def consume_enrollment(self, token_id: str, *, now_ns: int) -> bool:
        with self._write():
            cursor = self._db.execute(
                "UPDATE tokens SET used_ns = ? WHERE id = ? AND role = ? AND used_ns = 0 "
                "AND revoked_ns = 0 AND (expires_ns = 0 OR expires_ns > ?)",
                (now_ns, token_id, Role.ENROLL.value, now_ns),
            )
            return cursor.rowcount == 1

    def has_admin(self) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM tokens WHERE role = ?", (Role.ADMIN.value,)
            ).fetchone()
        return row is not None and _int(row[0]) > 0

    def add_agent(self, agent: AgentRecord, *, credential: TokenRecord) -> None:
        with self._write():
            self._insert_token(credential)
            self._db.execute(
                f"INSERT INTO agents ({_AGENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    agent.id,
                    agent.host_id,
                    agent.hostname,
                    agent.enrolled_ns,
                    agent.acked_sequence,
                    agent.last_seen_ns,
                    agent.status_json,
                    agent.status_ns,
                ),
            )

    def agent(self, agent_id: str) -> AgentRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_AGENT_COLUMNS} FROM agents WHERE id = ?", (agent_id,)
            ).fetchone()
        return None if row is None else _agent(row)

    def record_status(self, agent_id: str, *, status_json: str, now_ns: int) -> None:
        with self._write():
            self._db.execute(
                "UPDATE agents SET status_json = ?, status_ns = ?, last_seen_ns = ? WHERE id = ?",
                (status_json, now_ns, now_ns, agent_id),
            )

    def hosts(self) -> list[HostRecord]:
        with self._lock:
            agents = [
                _agent(row)
                for row in self._db.execute(
                    f"SELECT {_AGENT_COLUMNS} FROM agents ORDER BY host_id, enrolled_ns"
                ).fetchall()
            ]
            counts = {
                table: self._counts_by_host(table) for table in ("events", "alerts", "incidents")
            }
        by_host: dict[str, list[AgentRecord]] = {}
        for agent in agents:
            by_host.setdefault(agent.host_id, []).append(agent)
        return [
            HostRecord(
                id=host,
                name=members[-1].hostname,
                agents=tuple(members),
                events=counts["events"].get(host, 0),
                alerts=counts["alerts"].get(host, 0),
                incidents=counts["incidents"].get(host, 0),
                last_seen_ns=max(agent.last_seen_ns for agent in members),
            )
            for host, members in by_host.items()
        ]

    def _counts_by_host(self, table: str) -> dict[str, int]:
        rows = self._db.execute(f"SELECT host, count(*) FROM {table} GROUP BY host").fetchall()
        return {_str(row[0]): _int(row[1]) for row in rows}

    # uploads

    def commit_batch(self, batch: BatchCommit) -> bool:
        return self.commit_batches([batch])[0]

    def commit_batches(self, batches: Sequence[BatchCommit]) -> list[bool]:
        """One transaction for all (a worker's whole fetch): each batch is stored or answered
        as a duplicate as :meth:`commit_batch` would, in order."""
        stored: list[bool] = []
        with self._write():
            agents = sorted({batch.agent_id for batch in batches})
            select = "SELECT id, acked_sequence FROM agents"
            acked = {str(a): _int(s) for a, s in select_where_in(self._db, select, "id", agents)}
            kept: list[BatchCommit] = []
            for batch in batches:
                if batch.agent_id not in acked:
                    raise StorageError("unknown agent", location=batch.agent_id)
                if acked[batch.agent_id] >= batch.sequence:
                    stored.append(False)
                    continue
                acked[batch.agent_id] = batch.sequence
                kept.append(batch)
                stored.append(True)
            self._store_batches(kept)
        return stored

    def _store_batches(self, batches: Sequence[BatchCommit]) -> None:
        """Write ``batches`` (new ones, in order) with a statement per table for them all,
        not per batch: against a server each statement is a round trip."""
        if not batches:
            return
        self._db.executemany(
            "INSERT INTO batches (agent_id, sequence, received_ns, events, rejected) "
            "VALUES (?, ?, ?, ?, ?)",
            [(b.agent_id, b.sequence, b.received_ns, len(b.events), b.rejected) for b in batches],
        )
        latest = {b.agent_id: (b.sequence, b.received_ns) for b in batches}  # the last wins
        self._db.executemany(
            "UPDATE agents SET acked_sequence = ?, last_seen_ns = ? WHERE id = ?",
            [(sequence, seen, agent) for agent, (sequence, seen) in latest.items()],
        )
        self._store_findings(batches)
        for batch in batches:
            sql_exceptions.count_hits(self._db, batch.exception_hits, now_ns=batch.received_ns)
        checkpoints = [b.checkpoint for b in batches if b.checkpoint is not None]
        if checkpoints:
            self._db.executemany(
                _CHECKPOINT_UPSERT,
                [(c.host, c.agent_id, c.sequence, c.written_ns, c.data) for c in checkpoints],
            )

    def save_checkpoint(self, checkpoint: Checkpoint) -> bool:
        with self._write():
            row = self._db.execute(
                "SELECT acked_sequence FROM agents WHERE id = ?", (checkpoint.agent_id,)
            ).fetchone()
            if row is None or _int(row[0]) != checkpoint.sequence:
                return False
            self._put_checkpoint(checkpoint)
        return True

    def _put_checkpoint(self, c: Checkpoint) -> None:
        self._db.execute(_CHECKPOINT_UPSERT, (c.host, c.agent_id, c.sequence, c.written_ns, c.data))

    def checkpoint(self, host: str) -> Checkpoint | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE host = ?", (host,)
            ).fetchone()
        if row is None:
            return None
        data = row[4]
        assert isinstance(data, bytes | bytearray | memoryview)
        return Checkpoint(
            host=_str(row[0]),
            agent_id=_str(row[1]),
            sequence=_int(row[2]),
            written_ns=_int(row[3]),
            data=bytes(data),
        )

    def _store_findings(self, batches: Sequence[BatchCommit]) -> None:
        events = [e for batch in batches for e in batch.events]
        if events:
            self._db.load(
                "events",
                _EVENT_LOAD_COLUMNS,
                [
                    (
                        *(e.host, e.ts, e.event_id, e.action, e.process, e.executable),
                        *(e.command_line, e.file_path, e.remote, e.json),
                    )
                    for e in events
                ],
            )
        alerts = [a for batch in batches for a in batch.alerts]
        if alerts:
            self._db.executemany(
                f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (host, id) DO NOTHING",
                [
                    (
                        *(a.host, a.id, a.rule_id, a.title, a.level, a.detector, a.first_ts),
                        *(a.last_ts, a.score, a.json),
                    )
                    for a in alerts
                ],
            )
        incidents = [i for batch in batches for i in batch.incidents]
        if incidents:
            # one row at a time, in order: a later version of an incident overwrites an
            # earlier one of the same fetch; the analyst's status survives new versions
            self._db.executemany(
                f"INSERT INTO incidents ({_INCIDENT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "severity = excluded.severity, score = excluded.score, title = excluded.title, "
                "first_ts = excluded.first_ts, last_ts = excluded.last_ts, "
                "updated_ts = excluded.updated_ts, version = excluded.version, "
                "json = excluded.json",
                [
                    (
                        *(i.id, i.host, i.engine_id, i.severity, i.score, i.status, i.title),
                        *(i.first_ts, i.last_ts, i.updated_ts, i.version, i.json),
                    )
                    for i in incidents
                ],
            )

    # queries

    def search_events(self, query: EventQuery) -> list[EventRow]:
        conditions: list[str] = []
        values: list[object] = []
        for column, value in (("host", query.host), ("process", query.process)):
            if value:
                conditions.append(f"{column} = ?")
                values.append(value)
        if query.text:
            pattern = f"%{like_literal(query.text.lower())}%"
            conditions.append(
                "(lower(executable) LIKE ? ESCAPE '\\' OR lower(command_line) LIKE ? ESCAPE '\\' "
                "OR lower(file_path) LIKE ? ESCAPE '\\' OR lower(remote) LIKE ? ESCAPE '\\')"
            )
            values.extend([pattern] * 4)
        self._time_bounds("ts", query.since, query.until, conditions, values)
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events{_where(conditions)} "
            "ORDER BY ts, key LIMIT ? OFFSET ?"
        )
        values.extend([query.page.limit, query.page.offset])
        with self._lock:
            return [_event(row) for row in self._db.execute(sql, values).fetchall()]

    @staticmethod
    def _time_bounds(
        column: str, since: int, until: int, conditions: list[str], values: list[object]
    ) -> None:
        if since:
            conditions.append(f"{column} >= ?")
            values.append(since)
        if until:
            conditions.append(f"{column} < ?")
            values.append(until)

    def alerts(self, query: AlertQuery) -> list[AlertRow]:
        conditions: list[str] = []
        values: list[object] = []
        for column, value in (("host", query.host), ("level", query.level)):
            if value:
                conditions.append(f"{column} = ?")
                values.append(value)
        self._time_bounds("first_ts", query.since, query.until, conditions, values)
        order = "DESC" if query.newest_first else "ASC"
        sql = (
            f"SELECT {_ALERT_COLUMNS} FROM alerts{_where(conditions)} "
            f"ORDER BY first_ts {order}, host {order}, id {order} LIMIT ? OFFSET ?"
        )
        values.extend([query.page.limit, query.page.offset])
        with self._lock:
            return [_alert(row) for row in self._db.execute(sql, values).fetchall()]

    def alerts_by_id(self, host: str, ids: list[str]) -> list[AlertRow]:
        found: list[AlertRow] = []
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                rows = self._db.execute(
                    f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE host = ? AND id IN ({marks})",
                    [host, *chunk],
                ).fetchall()
                found.extend(_alert(row) for row in rows)
        return sorted(found, key=lambda row: (row.first_ts, row.id))

    def incidents(self, query: IncidentQuery) -> list[IncidentRow]:
        conditions: list[str] = []
        values: list[object] = []
        for column, value in (
            ("host", query.host),
            ("status", query.status),
            ("severity", query.severity),
        ):
            if value:
                conditions.append(f"{column} = ?")
                values.append(value)
        sql = (
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents{_where(conditions)} "
            "ORDER BY first_ts, id LIMIT ? OFFSET ?"
        )
        values.extend([query.page.limit, query.page.offset])
        with self._lock:
            return [_incident(row) for row in self._db.execute(sql, values).fetchall()]

    def incident(self, incident_id: str) -> IncidentRow | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)
            ).fetchone()
        return None if row is None else _incident(row)

    def set_incident_status(self, change: StatusChange) -> bool:
        with self._write():
            row = self._db.execute(
                "SELECT status FROM incidents WHERE id = ?", (change.incident_id,)
            ).fetchone()
            if row is None:
                return False
            self._db.execute(
                "UPDATE incidents SET status = ? WHERE id = ?", (change.new, change.incident_id)
            )
            self._db.execute(
                "INSERT INTO incident_changes (incident_id, ts_ns, author, old, new) "
                "VALUES (?, ?, ?, ?, ?)",
                (change.incident_id, change.ts_ns, change.author, _str(row[0]), change.new),
            )
        return True

    def add_note(self, note: Note) -> bool:
        with self._write():
            row = self._db.execute(
                "SELECT 1 FROM incidents WHERE id = ?", (note.incident_id,)
            ).fetchone()
            if row is None:
                return False
            self._db.execute(
                "INSERT INTO incident_notes (incident_id, ts_ns, author, text) VALUES (?, ?, ?, ?)",
                (note.incident_id, note.ts_ns, note.author, note.text),
            )
        return True

    def notes(self, incident_id: str) -> list[Note]:
        with self._lock:
            rows = self._db.execute(
                "SELECT incident_id, ts_ns, author, text FROM incident_notes "
                "WHERE incident_id = ? ORDER BY key",
                (incident_id,),
            ).fetchall()
        return [
            Note(incident_id=_str(r[0]), ts_ns=_int(r[1]), author=_str(r[2]), text=_str(r[3]))
            for r in rows
        ]

    def status_changes(self, incident_id: str) -> list[StatusChange]:
        with self._lock:
            rows = self._db.execute(
                "SELECT incident_id, ts_ns, author, old, new FROM incident_changes "
                "WHERE incident_id = ? ORDER BY key",
                (incident_id,),
            ).fetchall()
        return [
            StatusChange(
                incident_id=_str(r[0]),
                ts_ns=_int(r[1]),
                author=_str(r[2]),
                old=_str(r[3]),
                new=_str(r[4]),
            )
            for r in rows
        ]

    def timeline(self, *, bucket_ns: int, since: int = 0) -> list[TimelineBucket]:
        counts: dict[int, list[int]] = {}
        with self._lock:
            for index, table in enumerate(("alerts", "incidents")):
                rows = self._db.execute(
                    "SELECT bucket, count(*) FROM (SELECT (first_ts / ?) * ? AS bucket "
                    f"FROM {table} WHERE first_ts >= ?) AS buckets GROUP BY bucket",
                    (bucket_ns, bucket_ns, since),
                ).fetchall()
                for row in rows:
                    counts.setdefault(_int(row[0]), [0, 0])[index] = _int(row[1])
        return [
            TimelineBucket(start_ns=start, alerts=pair[0], incidents=pair[1])
            for start, pair in sorted(counts.items())
        ]

    # analysts' exceptions (sql_exceptions holds their SQL)

    def add_exception(self, record: ExceptionRecord, *, audit: AuditEntry) -> ExceptionRecord:
        with self._write():
            return sql_exceptions.insert(self._db, record, audit=audit)

    def update_exception(self, record: ExceptionRecord, *, audit: AuditEntry) -> bool:
        with self._write():
            return sql_exceptions.update(self._db, record, audit=audit)

    def exception(self, exception_id: str) -> ExceptionRecord | None:
        with self._lock:
            return sql_exceptions.select_one(self._db, exception_id)

    def exceptions(self, *states: ExceptionState) -> list[ExceptionRecord]:
        wanted = states or tuple(s for s in ExceptionState if s is not ExceptionState.DELETED)
        with self._lock:
            return sql_exceptions.select(self._db, states=wanted)

    def exception_audit(self, exception_id: str = "") -> list[AuditEntry]:
        with self._lock:
            return sql_exceptions.select_audit(self._db, exception_id)

    # response actions (sql_actions holds their SQL)

    def add_action(self, record: ActionRecord, *, audit: ActionAuditEntry) -> bool:
        with self._write():
            return sql_actions.insert(self._db, record, audit=audit)

    def update_action(
        self, record: ActionRecord, *, was: ActionState, audit: ActionAuditEntry | None
    ) -> bool:
        with self._write():
            return sql_actions.update(self._db, record, was=was, audit=audit)

    def action(self, action_id: str) -> ActionRecord | None:
        with self._lock:
            return sql_actions.select_one(self._db, action_id)

    def actions(self, query: ActionQuery) -> list[ActionRecord]:
        with self._lock:
            return sql_actions.select(self._db, query)

    def action_audit(self, action_id: str) -> list[ActionAuditEntry]:
        with self._lock:
            return sql_actions.select_audit(self._db, action_id)

    def add_action_audit(self, entry: ActionAuditEntry) -> None:
        with self._write():
            sql_actions.append_audit(self._db, entry)

    def execute_action(
        self,
        record: ActionRecord,
        *,
        was: ActionState,
        audit: ActionAuditEntry,
        at_most: int,
        since_ns: int,
    ) -> Execution:
        with self._write():
            return sql_actions.execute(
                self._db, record, was=was, audit=audit, at_most=at_most, since_ns=since_ns
            )

    def agents_of(self, host: str) -> list[AgentRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_AGENT_COLUMNS} FROM agents WHERE host_id = ? ORDER BY enrolled_ns, id",
                (host,),
            ).fetchall()
        return [_agent(row) for row in rows]

    # retention (sql_retention holds its SQL)

    def prune(self, cutoffs: FindingsCutoffs) -> FindingsPrune:
        """Incidents, then alerts, then events, each in batches of ``cutoffs.rows`` with the
        store's lock (and a transaction) held for one batch at a time; then the size bound,
        then freed pages given back."""
        holds = _Holds(self._lock, self._db)
        db = self._db
        rows = cutoffs.rows
        incidents = 0
        if cutoffs.incidents_before:
            incidents = holds.repeat(
                partial(sql_retention.delete_incidents, db, cutoffs.incidents_before, rows), rows
            )
        with holds.hold():
            kept_alerts, kept_nodes = sql_retention.kept_by_incidents(db)
        alerts = 0
        if cutoffs.alerts_before:
            alerts = self._prune_alerts(cutoffs.alerts_before, kept_alerts, holds, rows)
        events = 0
        if cutoffs.events_before:
            with holds.hold():
                hosts = sql_retention.hosts(db)
            for host in hosts:
                events += holds.repeat(
                    partial(
                        sql_retention.delete_events_before, db, host, cutoffs.events_before, rows
                    ),
                    rows,
                )
        with holds.hold():
            before = db.used_bytes()
        for_size = self._prune_for_size(cutoffs, before, holds) if cutoffs.max_bytes else 0
        if incidents or alerts or events or for_size:
            db.vacuum(["events", "alerts", "incidents", "incident_notes", "incident_changes"])
        reclaimed = 0
        while True:
            with holds.hold():
                freed = db.reclaim(pages=cutoffs.reclaim_pages)
            reclaimed += freed
            if not freed:
                break
        with holds.hold():
            after = db.used_bytes()
        if cutoffs.max_bytes:
            self._size_floor = after if after > cutoffs.max_bytes else 0
        return FindingsPrune(
            incidents=incidents,
            alerts=alerts,
            events=events,
            events_for_size=for_size,
            bytes_before=before,
            bytes_after=after,
            reclaimed_bytes=reclaimed,
            longest_hold_s=holds.longest_s,
            kept_nodes={host: frozenset(ids) for host, ids in kept_nodes.items()},
        )

    def _prune_alerts(
        self, before_ts: int, kept: set[tuple[str, str]], holds: _Holds, rows: int
    ) -> int:
        deleted = 0
        after: tuple[int, str, str] = (-(2**63), "", "")
        while True:
            with holds.write():
                found = sql_retention.alerts_before(self._db, before_ts, after, rows)
                doomed = [
                    (_str(host), _str(alert))
                    for _first, host, alert, last in found
                    if _int(last) < before_ts and (_str(host), _str(alert)) not in kept
                ]
                sql_retention.delete_alerts(self._db, doomed)
            deleted += len(doomed)
            if len(found) < rows:
                return deleted
            last_row = found[-1]
            after = (_int(last_row[0]), _str(last_row[1]), _str(last_row[2]))

    def _prune_for_size(self, cutoffs: FindingsCutoffs, used: int, holds: _Holds) -> int:
        """Delete the oldest events in proportion to the bytes over the bound (events are
        nearly all of the store), measure again and go on while the measure falls (SQLite
        frees only whole pages, so a round may free less than its share).

        A pass that ends over the bound (PostgreSQL: deleted rows' space is reused in place,
        the files keep their size) leaves its measure as the floor: later passes delete only
        what grows past it, not the same share again and again."""
        deleted = 0
        for _round in range(SIZE_ROUNDS):
            limit = max(cutoffs.max_bytes, self._size_floor)
            if used <= limit:
                break
            with holds.hold():
                total = sql_retention.count_events(self._db)
            excess = -(-total * (used - limit) // used)  # rounded up
            while excess > 0:
                wanted = min(cutoffs.rows, excess)
                with holds.write():
                    done = sql_retention.delete_oldest_events(self._db, wanted)
                deleted += done
                excess -= wanted
                if done < wanted:
                    return deleted
            with holds.hold():
                now = self._db.used_bytes()
            if now >= used:
                break
            used = now
        return deleted

    def record_retention(self, report: str) -> None:
        """Keep the JSON report of the last retention pass (``provarmor server retention``)."""
        with self._write():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('retention', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (report,),
            )

    def retention_record(self) -> str:
        """The report :meth:`record_retention` kept last (empty: none yet)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'retention'").fetchone()
        return "" if row is None else _str(row[0])


class _Holds:
    """Holds of the store's lock by one retention pass, timed (the longest is what an upload
    may have waited)."""

    def __init__(self, lock: threading.Lock, db: Dialect) -> None:
        self._lock = lock
        self._db = db
        self.longest_s = 0.0

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            started = time.perf_counter()
            try:
                yield
            finally:
                self.longest_s = max(self.longest_s, time.perf_counter() - started)

    @contextmanager
    def write(self) -> Iterator[None]:
        with self.hold(), self._db.transaction():
            yield

    def repeat(self, step: Callable[[], int], rows: int) -> int:
        """Run ``step`` (it deletes up to ``rows`` rows), one transaction each, until it
        deletes fewer; the rows deleted."""
        total = 0
        while True:
            with self.write():
                done = step()
            total += done
            if done < rows:
                return total
