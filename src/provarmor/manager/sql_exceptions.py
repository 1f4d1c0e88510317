"""The SQL of analysts' exceptions and their audit trail (findings store format 2), run by
:class:`~provarmor.manager.sql_store.SqlFindingsStore` inside its own lock and transactions.

``exceptions`` holds each exception's current state, its conditions (JSON) and its hit count;
``exception_audit`` is append-only: this module only ever inserts into it.
"""

# SQL text is assembled only from the column list of this module; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from provarmor.manager.exceptions import (
    AuditEntry,
    Conditions,
    ExceptionRecord,
    ExceptionScope,
    ExceptionState,
)

if TYPE_CHECKING:
    from provarmor.storage.dialect import Dialect

TABLES = """
CREATE TABLE IF NOT EXISTS exceptions (
    id TEXT PRIMARY KEY, signature TEXT NOT NULL, state TEXT NOT NULL, scope TEXT NOT NULL,
    host TEXT NOT NULL, conditions TEXT NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL,
    created_ns BIGINT NOT NULL, created_by TEXT NOT NULL, updated_ns BIGINT NOT NULL,
    hits BIGINT NOT NULL, last_hit_ns BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS exceptions_by_signature ON exceptions (signature);
CREATE TABLE IF NOT EXISTS exception_audit (
    key {serial}, exception_id TEXT NOT NULL, ts_ns BIGINT NOT NULL, author TEXT NOT NULL,
    action TEXT NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL, snapshot TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exception_audit_by_exception ON exception_audit (exception_id);
"""

_COLUMNS = (
    "id, signature, state, scope, host, conditions, reason, source, created_ns, created_by, "
    "updated_ns, hits, last_hit_ns"
)
_AUDIT_COLUMNS = "exception_id, ts_ns, author, action, reason, state, snapshot"


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _record(row: Sequence[object]) -> ExceptionRecord:
    return ExceptionRecord(
        id=str(row[0]),
        state=ExceptionState(str(row[2])),
        scope=ExceptionScope(str(row[3])),
        host=str(row[4]),
        conditions=Conditions.from_json(str(row[5])),
        reason=str(row[6]),
        source=str(row[7]),
        created_ns=_int(row[8]),
        created_by=str(row[9]),
        updated_ns=_int(row[10]),
        hits=_int(row[11]),
        last_hit_ns=_int(row[12]),
    )


def _conditions(record: ExceptionRecord) -> str:
    return json.dumps(record.conditions.to_dict(), sort_keys=True)


def insert(db: Dialect, record: ExceptionRecord, *, audit: AuditEntry) -> ExceptionRecord:
    """Store ``record`` with its first audit entry, unless an exception with its signature
    exists and is not deleted: then that one is returned and nothing is written."""
    found = db.execute(
        f"SELECT {_COLUMNS} FROM exceptions WHERE signature = ? AND state <> ? "
        "ORDER BY created_ns, id LIMIT 1",
        (record.signature, ExceptionState.DELETED.value),
    ).fetchone()
    if found is not None:
        return _record(found)
    db.execute(
        f"INSERT INTO exceptions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            *(record.id, record.signature, record.state.value, record.scope.value, record.host),
            *(_conditions(record), record.reason, record.source, record.created_ns),
            *(record.created_by, record.updated_ns, record.hits, record.last_hit_ns),
        ),
    )
    append_audit(db, audit)
    return record


def update(db: Dialect, record: ExceptionRecord, *, audit: AuditEntry) -> bool:
    """Write ``record``'s state, scope, conditions and reason, with the audit entry; False
    (nothing written) for an unknown id."""
    cursor = db.execute(
        "UPDATE exceptions SET signature = ?, state = ?, scope = ?, host = ?, conditions = ?, "
        "reason = ?, updated_ns = ? WHERE id = ?",
        (
            *(record.signature, record.state.value, record.scope.value, record.host),
            *(_conditions(record), record.reason, record.updated_ns, record.id),
        ),
    )
    if cursor.rowcount != 1:
        return False
    append_audit(db, audit)
    return True


def append_audit(db: Dialect, entry: AuditEntry) -> None:
    db.execute(
        f"INSERT INTO exception_audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            *(entry.exception_id, entry.ts_ns, entry.author, entry.action),
            *(entry.reason, entry.state, entry.snapshot),
        ),
    )


def count_hits(db: Dialect, hits: Mapping[str, int], *, now_ns: int) -> None:
    for exception_id, count in sorted(hits.items()):
        db.execute(
            "UPDATE exceptions SET hits = hits + ?, last_hit_ns = ? WHERE id = ?",
            (count, now_ns, exception_id),
        )


def select_one(db: Dialect, exception_id: str) -> ExceptionRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM exceptions WHERE id = ?", (exception_id,)).fetchone()
    return None if row is None else _record(row)


def select(db: Dialect, *, states: Sequence[ExceptionState]) -> list[ExceptionRecord]:
    marks = ", ".join("?" for _ in states)
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM exceptions WHERE state IN ({marks}) ORDER BY created_ns, id",
        [state.value for state in states],
    ).fetchall()
    return [_record(row) for row in rows]


def select_audit(db: Dialect, exception_id: str = "") -> list[AuditEntry]:
    where = " WHERE exception_id = ?" if exception_id else ""
    rows = db.execute(
        f"SELECT {_AUDIT_COLUMNS} FROM exception_audit{where} ORDER BY key",
        (exception_id,) if exception_id else (),
    ).fetchall()
    return [
        AuditEntry(
            exception_id=str(row[0]),
            ts_ns=_int(row[1]),
            author=str(row[2]),
            action=str(row[3]),
            reason=str(row[4]),
            state=str(row[5]),
            snapshot=str(row[6]),
        )
        for row in rows
    ]
