"""The SQL of response actions and their audit trail (findings store format 4), run by
:class:`~provarmor.manager.sql_store.SqlFindingsStore` inside its own lock and transactions.

``actions`` holds each action's current state (and its command for the agent);
``action_audit`` is append-only: this module only ever inserts into it. A state change is
written only when the row is still in the state the caller read (compare and set), so two
requests racing on one action cannot both move it.
"""

# SQL text is assembled only from the column lists of this module; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from provarmor.manager.actions import (
    EXECUTED_STEP,
    ActionAuditEntry,
    ActionRecord,
    ActionState,
    CommandKind,
    Execution,
)
from provarmor.response.records import ActionKind

if TYPE_CHECKING:
    from provarmor.manager.store import ActionQuery
    from provarmor.storage.dialect import Dialect

TABLES = """
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, incident_id TEXT NOT NULL, kind TEXT NOT NULL,
    request_json TEXT NOT NULL, state TEXT NOT NULL, needs_approval BIGINT NOT NULL,
    proposed_by TEXT NOT NULL, approved_by TEXT NOT NULL, created_ns BIGINT NOT NULL,
    updated_ns BIGINT NOT NULL, command TEXT NOT NULL, expires_ns BIGINT NOT NULL,
    deliveries BIGINT NOT NULL, result_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_host_state ON actions (host, state);
CREATE INDEX IF NOT EXISTS actions_by_incident ON actions (incident_id);
CREATE TABLE IF NOT EXISTS action_audit (
    key {serial}, action_id TEXT NOT NULL, ts_ns BIGINT NOT NULL, author TEXT NOT NULL,
    step TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, outcome TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS action_audit_by_action ON action_audit (action_id);
"""

_COLUMNS = (
    "id, host, incident_id, kind, request_json, state, needs_approval, proposed_by, "
    "approved_by, created_ns, updated_ns, command, expires_ns, deliveries, result_json"
)
_AUDIT_COLUMNS = "action_id, ts_ns, author, step, state, reason, outcome, message"


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _record(row: Sequence[object]) -> ActionRecord:
    return ActionRecord(
        id=str(row[0]),
        host=str(row[1]),
        incident_id=str(row[2]),
        kind=ActionKind(str(row[3])),
        request_json=str(row[4]),
        state=ActionState(str(row[5])),
        needs_approval=bool(_int(row[6])),
        proposed_by=str(row[7]),
        approved_by=str(row[8]),
        created_ns=_int(row[9]),
        updated_ns=_int(row[10]),
        command=CommandKind(str(row[11])),
        expires_ns=_int(row[12]),
        deliveries=_int(row[13]),
        result_json=str(row[14]),
    )


def insert(db: Dialect, record: ActionRecord, *, audit: ActionAuditEntry) -> bool:
    """Store a new action with its first audit entry; False (nothing written) when its id
    is taken."""
    if db.execute("SELECT 1 FROM actions WHERE id = ?", (record.id,)).fetchone() is not None:
        return False
    db.execute(
        f"INSERT INTO actions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _values(record),
    )
    append_audit(db, audit)
    return True


def _values(r: ActionRecord) -> tuple[object, ...]:
    return (
        *(r.id, r.host, r.incident_id, r.kind.value, r.request_json, r.state.value),
        *(int(r.needs_approval), r.proposed_by, r.approved_by, r.created_ns, r.updated_ns),
        *(r.command.value, r.expires_ns, r.deliveries, r.result_json),
    )


def update(
    db: Dialect, record: ActionRecord, *, was: ActionState, audit: ActionAuditEntry | None
) -> bool:
    """Write ``record`` (and the audit entry) if the stored action is still in state
    ``was``; False (nothing written) otherwise."""
    cursor = db.execute(
        "UPDATE actions SET state = ?, approved_by = ?, updated_ns = ?, command = ?, "
        "expires_ns = ?, deliveries = ?, result_json = ? WHERE id = ? AND state = ?",
        (
            *(record.state.value, record.approved_by, record.updated_ns, record.command.value),
            *(record.expires_ns, record.deliveries, record.result_json, record.id, was.value),
        ),
    )
    if cursor.rowcount != 1:
        return False
    if audit is not None:
        append_audit(db, audit)
    return True


def execute(  # noqa: PLR0913 (the move, and the limit it must fit)
    db: Dialect,
    record: ActionRecord,
    *,
    was: ActionState,
    audit: ActionAuditEntry,
    at_most: int,
    since_ns: int,
) -> Execution:
    """Inside a transaction: write ``record`` (queued to run, with its audit entry) unless its
    host already had ``at_most`` executions since ``since_ns``. The host's lock makes the
    count and the write one step: two executes at once on one host (from any manager
    process) cannot both pass a limit that has room for one."""
    db.lock(f"provarmor.actions.execute:{record.host}")
    if count_executed(db, record.host, since_ns=since_ns) >= at_most:
        return Execution.RATE_LIMITED
    if not update(db, record, was=was, audit=audit):
        return Execution.CHANGED
    return Execution.QUEUED


def append_audit(db: Dialect, entry: ActionAuditEntry) -> None:
    db.execute(
        f"INSERT INTO action_audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            *(entry.action_id, entry.ts_ns, entry.author, entry.step, entry.state.value),
            *(entry.reason, entry.outcome, entry.message),
        ),
    )


def select_one(db: Dialect, action_id: str) -> ActionRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM actions WHERE id = ?", (action_id,)).fetchone()
    return None if row is None else _record(row)


def select(db: Dialect, query: ActionQuery) -> list[ActionRecord]:
    conditions: list[str] = []
    values: list[object] = []
    states = query.states
    for column, value in (("host", query.host), ("incident_id", query.incident_id)):
        if value:
            conditions.append(f"{column} = ?")
            values.append(value)
    if states:
        conditions.append(f"state IN ({', '.join('?' for _ in states)})")
        values.extend(state.value for state in states)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM actions{where} ORDER BY created_ns, id LIMIT ? OFFSET ?",
        [*values, query.page.limit, query.page.offset],
    ).fetchall()
    return [_record(row) for row in rows]


def select_audit(db: Dialect, action_id: str) -> list[ActionAuditEntry]:
    rows = db.execute(
        f"SELECT {_AUDIT_COLUMNS} FROM action_audit WHERE action_id = ? ORDER BY ts_ns, key",
        (action_id,),
    ).fetchall()
    return [
        ActionAuditEntry(
            action_id=str(row[0]),
            ts_ns=_int(row[1]),
            author=str(row[2]),
            step=str(row[3]),
            state=ActionState(str(row[4])),
            reason=str(row[5]),
            outcome=str(row[6]),
            message=str(row[7]),
        )
        for row in rows
    ]


def count_executed(db: Dialect, host: str, *, since_ns: int) -> int:
    row = db.execute(
        "SELECT COUNT(*) FROM action_audit JOIN actions ON actions.id = action_audit.action_id "
        "WHERE actions.host = ? AND action_audit.step = ? AND action_audit.ts_ns >= ?",
        (host, EXECUTED_STEP, since_ns),
    ).fetchone()
    return 0 if row is None else _int(row[0])
