"""The findings store: what the manager keeps besides the provenance graphs.

Agents and their last status, tokens, the record of uploaded batches (for idempotent
re-delivery), searchable events, alerts, incidents (latest version, as msgspec JSON, with
indexed columns), incident notes and status changes, analysts' exceptions with their hit
counts and append-only audit trail, response actions (with the command each queues for its
host's agent) and their append-only audit trail. :class:`FindingsStore` is the seam;
:mod:`provarmor.manager.sql_store` implements it once over SQLite and PostgreSQL.

Everything an upload changes is written by :meth:`FindingsStore.commit_batch` in one
transaction with the batch's sequence number: a batch is either wholly stored and
acknowledged, or not at all (a worker commits a whole fetch of batches in one transaction:
:meth:`FindingsStore.commit_batches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from provarmor.manager.actions import ActionAuditEntry, ActionRecord, ActionState, Execution
from provarmor.manager.auth import Role
from provarmor.manager.exceptions import AuditEntry, ExceptionRecord, ExceptionState


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    id: str
    role: Role
    salt: str
    digest: str
    created_ns: int
    expires_ns: int = 0
    """0: never expires."""
    used_ns: int = 0
    """Enrolment tokens: when it was used (0: not yet)."""
    label: str = ""
    last_used_ns: int = 0
    """When it last authenticated a request (to the minute; 0: never)."""
    revoked_ns: int = 0
    """When an admin revoked it (0: not revoked); a revoked token authenticates nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRecord:
    id: str
    host_id: str
    hostname: str
    enrolled_ns: int
    acked_sequence: int = 0
    last_seen_ns: int = 0
    status_json: str = ""
    """The last ``POST /agents/{id}/status`` body (sensor, counters, drops), JSON."""
    status_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HostRecord:
    id: str
    name: str
    agents: tuple[AgentRecord, ...]
    events: int
    alerts: int
    incidents: int
    last_seen_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    """The searchable columns of one event, and its JSON."""

    host: str
    ts: int
    event_id: str
    action: str
    process: str
    executable: str
    command_line: str
    file_path: str
    remote: str
    json: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRow:
    host: str
    id: str
    rule_id: str
    title: str
    level: str
    detector: str
    first_ts: int
    last_ts: int
    score: float
    json: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentRow:
    id: str
    """The manager's id (unique across hosts and analysis runs)."""
    host: str
    engine_id: str
    """The id the host's incident engine gave it (``inc-c3``)."""
    severity: str
    score: float
    status: str
    title: str
    first_ts: int
    last_ts: int
    updated_ts: int
    version: int
    json: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCommit:
    """Everything one accepted upload adds, stored together."""

    agent_id: str
    sequence: int
    received_ns: int
    rejected: int = 0
    events: list[EventRow] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    incidents: list[IncidentRow] = field(default_factory=list)
    exception_hits: dict[str, int] = field(default_factory=dict)
    """Exception id -> alerts it suppressed in this batch."""
    checkpoint: Checkpoint | None = None
    """The host's analysis state after this batch, stored with it (replacing the last)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A host's analysis state (:mod:`provarmor.pipeline.checkpoint`) as of one agent's
    batch."""

    host: str
    agent_id: str
    sequence: int
    written_ns: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    incident_id: str
    ts_ns: int
    author: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChange:
    incident_id: str
    ts_ns: int
    author: str
    old: str
    new: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EventQuery:
    host: str = ""
    process: str = ""
    text: str = ""
    """Case-insensitive substring of executable, command line, file path or endpoint."""
    since: int = 0
    until: int = 0
    """0: no bound."""
    page: Page = Page()


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertQuery:
    host: str = ""
    level: str = ""
    since: int = 0
    until: int = 0
    newest_first: bool = True
    """Latest first, as incidents are listed; else oldest first."""
    page: Page = Page()


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentQuery:
    host: str = ""
    status: str = ""
    severity: str = ""
    page: Page = Page()


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionQuery:
    host: str = ""
    incident_id: str = ""
    states: tuple[ActionState, ...] = ()
    """Empty: any state."""
    page: Page = Page()


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineBucket:
    start_ns: int
    alerts: int
    incidents: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingsCutoffs:
    """Data times (ns) before which each kind goes (0: kept however old), and the size
    bound."""

    events_before: int = 0
    alerts_before: int = 0
    incidents_before: int = 0
    max_bytes: int = 0
    """0: no size bound."""
    rows: int = 5_000
    """Rows per transaction."""
    reclaim_pages: int = 4_096
    """Pages given back to the file system per hold of the store (SQLite)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingsPrune:
    incidents: int = 0
    alerts: int = 0
    events: int = 0
    """Events older than the age bound."""
    events_for_size: int = 0
    """Events deleted (oldest stored first) to bring the store under its size bound."""
    bytes_before: int = 0
    bytes_after: int = 0
    reclaimed_bytes: int = 0
    longest_hold_s: float = 0.0
    """The longest one batch held the store (and so any upload waiting for it)."""
    kept_nodes: dict[str, frozenset[str]] = field(default_factory=dict)
    """Per host, the graph nodes the remaining incidents name: graph retention keeps them."""


class FindingsStore(Protocol):
    def add_token(self, token: TokenRecord) -> None: ...

    def token(self, token_id: str) -> TokenRecord | None: ...

    def tokens(self) -> list[TokenRecord]:
        """Every token, oldest first."""

    def revoke_token(self, token_id: str, *, now_ns: int) -> bool:
        """Revoke a token; False when it is unknown or was revoked before."""

    def touch_token(self, token_id: str, *, now_ns: int) -> bool:
        """Record that the token was just used; False for an unknown token."""

    def consume_enrollment(self, token_id: str, *, now_ns: int) -> bool:
        """Mark an unused, unexpired, unrevoked enrolment token used; False when it was
        not."""

    def has_admin(self) -> bool: ...

    def add_agent(self, agent: AgentRecord, *, credential: TokenRecord) -> None: ...

    def agent(self, agent_id: str) -> AgentRecord | None: ...

    def record_status(self, agent_id: str, *, status_json: str, now_ns: int) -> None: ...

    def hosts(self) -> list[HostRecord]: ...

    def commit_batch(self, batch: BatchCommit) -> bool:
        """Store the batch; False (and nothing stored) when the agent's acknowledged
        sequence already reaches ``batch.sequence``."""

    def commit_batches(self, batches: Sequence[BatchCommit]) -> list[bool]:
        """:meth:`commit_batch` for each, in order, in one transaction (all or nothing)."""

    def save_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Store a host's checkpoint on its own, after the agent's batch it names was
        committed; False (and nothing stored) when the agent's acknowledged sequence is
        another (another process went on with the host)."""

    def checkpoint(self, host: str) -> Checkpoint | None:
        """The host's last checkpoint (committed with a batch, or saved after one), if any."""

    def search_events(self, query: EventQuery) -> list[EventRow]: ...

    def alerts(self, query: AlertQuery) -> list[AlertRow]: ...

    def alerts_by_id(self, host: str, ids: list[str]) -> list[AlertRow]: ...

    def incidents(self, query: IncidentQuery) -> list[IncidentRow]: ...

    def incident(self, incident_id: str) -> IncidentRow | None: ...

    def set_incident_status(self, change: StatusChange) -> bool:
        """Change the status (recorded with who and when); False for an unknown incident."""

    def add_note(self, note: Note) -> bool: ...

    def notes(self, incident_id: str) -> list[Note]: ...

    def status_changes(self, incident_id: str) -> list[StatusChange]: ...

    def timeline(self, *, bucket_ns: int, since: int = 0) -> list[TimelineBucket]: ...

    def add_exception(self, record: ExceptionRecord, *, audit: AuditEntry) -> ExceptionRecord:
        """Store a proposal with its audit entry; an exception with the same signature that
        is not deleted is returned instead (nothing stored twice)."""

    def update_exception(self, record: ExceptionRecord, *, audit: AuditEntry) -> bool:
        """Write the exception's new state and conditions with the audit entry, together."""

    def exception(self, exception_id: str) -> ExceptionRecord | None: ...

    def exceptions(self, *states: ExceptionState) -> list[ExceptionRecord]:
        """Exceptions in ``states`` (all but deleted ones when none is given), oldest first."""

    def exception_audit(self, exception_id: str = "") -> list[AuditEntry]:
        """The audit trail (of one exception, or of all), in the order it was written."""

    def add_action(self, record: ActionRecord, *, audit: ActionAuditEntry) -> bool:
        """Store a new action with its audit entry; False (nothing stored) when the id is
        taken."""

    def update_action(
        self, record: ActionRecord, *, was: ActionState, audit: ActionAuditEntry | None
    ) -> bool:
        """Write the action's new state (with the audit entry, together) if it is still in
        state ``was``; False (nothing written) otherwise."""

    def action(self, action_id: str) -> ActionRecord | None: ...

    def actions(self, query: ActionQuery) -> list[ActionRecord]:
        """Actions (of a host, an incident, in some states), oldest first."""

    def action_audit(self, action_id: str) -> list[ActionAuditEntry]:
        """Every step of one action, in time order (the order written among equal times)."""

    def add_action_audit(self, entry: ActionAuditEntry) -> None:
        """Append one step to an action's audit (its state unchanged)."""

    def execute_action(
        self,
        record: ActionRecord,
        *,
        was: ActionState,
        audit: ActionAuditEntry,
        at_most: int,
        since_ns: int,
    ) -> Execution:
        """:meth:`update_action` to queue ``record`` to run, unless its host already had
        ``at_most`` actions executed since ``since_ns``: the count and the write are one
        transaction, serialised per host across connections and processes."""

    def agents_of(self, host: str) -> list[AgentRecord]:
        """The agents enrolled for ``host``, oldest first."""

    def prune(self, cutoffs: FindingsCutoffs) -> FindingsPrune:
        """Delete what retention no longer keeps (:mod:`provarmor.manager.retention` says
        what is kept), one bounded batch per transaction."""

    def record_retention(self, report: str) -> None: ...

    def retention_record(self) -> str: ...

    def close(self) -> None: ...
