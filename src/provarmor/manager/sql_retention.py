"""The SQL of retention in the findings store, run by
:class:`~provarmor.manager.sql_store.SqlFindingsStore` one bounded batch per transaction.

Incidents go first (with their notes and status changes), then the alerts no remaining
incident names, then events; each step deletes at most ``rows`` rows so that an upload
waits for one batch at most. No table or column is added: the deletes use the indexes of
format 4 (events by host and time, alerts and incidents by time, actions by incident).
"""

# SQL text is assembled only from the table names of this module; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from provarmor.manager.actions import ActionState
from provarmor.model.incident import IncidentStatus
from provarmor.storage.dialect import IN_KEYS, delete_where_in

if TYPE_CHECKING:
    from provarmor.storage.dialect import Dialect

OPEN_STATUSES = (IncidentStatus.NEW.value, IncidentStatus.ACKNOWLEDGED.value)
"""An incident in one of these is kept whatever its age."""
PENDING_ACTIONS = (
    ActionState.PROPOSED.value,
    ActionState.APPROVED.value,
    ActionState.QUEUED.value,
    ActionState.DELIVERED.value,
)
"""An incident with an action in one of these is kept whatever its age."""


class _Node(msgspec.Struct):
    id: str


class _Kept(msgspec.Struct):
    """What retention needs of a kept incident's JSON."""

    alert_ids: tuple[str, ...] = ()
    nodes: tuple[_Node, ...] = ()


_decoder = msgspec.json.Decoder(_Kept)


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


def delete_incidents(db: Dialect, before_ts: int, rows: int) -> int:
    """Up to ``rows`` closed incidents whose last signal is older than ``before_ts`` and
    without a pending action, with their notes and status changes."""
    found = db.execute(
        "SELECT i.id FROM incidents i WHERE i.first_ts < ? AND i.last_ts < ? "
        f"AND i.status NOT IN ({_marks(len(OPEN_STATUSES))}) AND NOT EXISTS "
        "(SELECT 1 FROM actions a WHERE a.incident_id = i.id "
        f"AND a.state IN ({_marks(len(PENDING_ACTIONS))})) ORDER BY i.first_ts LIMIT ?",
        (before_ts, before_ts, *OPEN_STATUSES, *PENDING_ACTIONS, rows),
    ).fetchall()
    ids = [str(row[0]) for row in found]
    for table, column in (
        ("incident_notes", "incident_id"),
        ("incident_changes", "incident_id"),
        ("incidents", "id"),
    ):
        delete_where_in(db, table, column, ids)
    return len(ids)


def kept_by_incidents(db: Dialect) -> tuple[set[tuple[str, str]], dict[str, set[str]]]:
    """The ``(host, alert id)`` pairs and, per host, the graph node ids the stored incidents
    name (all of them: those retention deletes are gone before this is asked)."""
    alerts: set[tuple[str, str]] = set()
    nodes: dict[str, set[str]] = {}
    for host, text in db.execute("SELECT host, json FROM incidents").fetchall():
        kept = _decoder.decode(str(text))
        alerts.update((str(host), alert) for alert in kept.alert_ids)
        nodes.setdefault(str(host), set()).update(node.id for node in kept.nodes)
    return alerts, nodes


def alerts_before(
    db: Dialect, before_ts: int, after: tuple[int, str, str], rows: int
) -> Sequence[Sequence[object]]:
    """Up to ``rows`` ``(first_ts, host, id, last_ts)`` of alerts that started before
    ``before_ts``, after the key ``after`` in ``(first_ts, host, id)`` order."""
    return db.execute(
        "SELECT first_ts, host, id, last_ts FROM alerts WHERE first_ts < ? "
        "AND (first_ts, host, id) > (?, ?, ?) ORDER BY first_ts, host, id LIMIT ?",
        (before_ts, *after, rows),
    ).fetchall()


def delete_alerts(db: Dialect, keys: Sequence[tuple[str, str]]) -> None:
    for start in range(0, len(keys), IN_KEYS):
        chunk = keys[start : start + IN_KEYS]
        condition = " OR ".join("(host = ? AND id = ?)" for _ in chunk)
        db.execute(f"DELETE FROM alerts WHERE {condition}", [part for key in chunk for part in key])


def hosts(db: Dialect) -> list[str]:
    """The hosts events can belong to: those of enrolled agents (events come only with an
    agent's upload, and of its own host)."""
    return [str(row[0]) for row in db.execute("SELECT DISTINCT host_id FROM agents").fetchall()]


def delete_events_before(db: Dialect, host: str, before_ts: int, rows: int) -> int:
    """Up to ``rows`` events of ``host`` older than ``before_ts`` (the host and time index)."""
    cursor = db.execute(
        "DELETE FROM events WHERE key IN "
        "(SELECT key FROM events WHERE host = ? AND ts < ? LIMIT ?)",
        (host, before_ts, rows),
    )
    return max(cursor.rowcount, 0)


def delete_oldest_events(db: Dialect, rows: int) -> int:
    """The ``rows`` events stored first (the primary key's order)."""
    cursor = db.execute(
        "DELETE FROM events WHERE key IN (SELECT key FROM events ORDER BY key LIMIT ?)", (rows,)
    )
    return max(cursor.rowcount, 0)


def count_events(db: Dialect) -> int:
    row = db.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(str(row[0]))
