"""Settings of the manager service (``provarmor server``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provarmor.bus.credentials import AccountSigner
from provarmor.model.errors import ConfigError
from provarmor.model.setting import Maturity, setting
from provarmor.outputs.alert_formats import AlertFormat
from provarmor.outputs.incident_formats import IncidentFormat
from provarmor.response.records import ActionKind


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerSettings:
    listen: str = setting("127.0.0.1:8443", "Address and port the API listens on (`host:port`).")
    state_dir: Path = setting(
        Path("/var/lib/provarmor/manager"),
        "Where the manager keeps its database (SQLite default) and the per-host graph stores.",
    )
    database_url: str = setting(
        "",
        "Findings store: `sqlite:///path/manager.db` or `postgresql://user:pass@host/db` "
        "(`?schema=` picks a schema, `pool_size=` the connections each process shares, "
        "default 4). Empty: `manager.db` under `state_dir`.",
    )
    max_upload_bytes: int = setting(
        8 * 1024 * 1024,
        "Largest upload body accepted, compressed and again decompressed (else 413).",
    )
    max_request_bytes: int = setting(
        64 * 1024,
        "Largest body of any other request (enrolment, tokens, notes, status), counted while "
        "it is read (else 413).",
    )
    max_batch_events: int = setting(20_000, "Most events one uploaded batch may hold (else 413).")
    tls_cert: Path | None = setting(
        None, "Server certificate (PEM); with `tls_key`, the API is served over HTTPS."
    )
    tls_key: Path | None = setting(None, "Private key of `tls_cert` (PEM).")
    rules: tuple[Path, ...] = setting(
        (), "Sigma rule files or directories run on uploaded events (empty: the bundled pack)."
    )
    model: Path | None = setting(
        None,
        "Anomaly model bundle (`provarmor train`) run for every host; none: `anomaly.model`'s, "
        "and without that each host learns its own (section `learning`).",
        maturity=Maturity.INCUBATING,
    )
    bus_url: str = setting(
        "",
        "Cluster mode: the JetStream bus agents publish to (`nats://host:port`, `tls://` with "
        "TLS), handed to each agent at enrolment with credentials of its own (needs "
        "`bus_signing_key`); response commands go to the agents on it, signed with the "
        "manager's key (`command-signing.key` in `state_dir`). Empty: agents upload and "
        "fetch commands over HTTPS.",
    )
    bus_signing_key: Path | None = setting(
        None,
        "The bus account's signing key (JSON, written by `provarmor cluster up`) that signs "
        "each enrolled agent's bus credentials.",
    )
    bus_credentials: Path | None = setting(
        None,
        "The manager's own bus user (a NATS `.creds` file, written by `provarmor cluster up` "
        "as `bus/manager.creds`): it makes the command stream and each agent's consumer and "
        "publishes commands. None: an open bus without authentication.",
    )
    bus_ca: Path | None = setting(
        None, "CA certificate (PEM) the manager trusts for a `tls://` bus (else the system's)."
    )
    enrollment_token_seconds: int = setting(86_400, "How long an enrolment token stays valid.")
    user_token_seconds: int = setting(
        90 * 86_400,
        "How long a new user API token (analyst, admin) stays valid unless its creator says "
        "otherwise (0: never expires).",
    )
    checkpoints: bool = setting(
        True,
        "Store each host's analysis state with every batch (a worker: every "
        "`--checkpoint-batches` batches or `--checkpoint-seconds`, the batches since are "
        "taken again from the stream) and restore it when the host's analysis is opened "
        "again (after a restart, or on another worker), so incidents continue exactly; off: "
        "a restart starts each host's analysis afresh.",
    )
    keep_event_json: bool = setting(
        True, "Store each uploaded event's JSON for search results (else indexed fields only)."
    )
    alerts_out: Path | None = setting(
        None,
        "Also append every alert raised on uploads to this file, one JSON line each in "
        "`alert_format` (empty: the findings store only).",
    )
    alert_format: AlertFormat = setting(
        AlertFormat("ecs"), "Format of `alerts_out`: any alert format of `provarmor detect`."
    )
    incidents_out: Path | None = setting(
        None,
        "Also write every incident version: appended to this file as JSON lines, or, for a "
        "document format (`dot`, `svg`), as one file per incident in this directory, replaced "
        "by each version (empty: the findings store only).",
    )
    incident_format: IncidentFormat = setting(
        IncidentFormat("json"),
        "Format of `incidents_out`: any incident format of `provarmor detect`.",
    )

    approval_required: tuple[str, ...] = setting(
        ("isolate", "lock_user"),
        "Response actions (`/api/v1/actions`) an admin must approve before they run; "
        "analysts propose and run the others (kill, suspend, quarantine, block).",
    )
    command_seconds: int = setting(
        3600,
        "How long a response command waits for its host's agent; one not delivered by then "
        "expires and never runs.",
    )
    result_seconds: int = setting(
        300,
        "How long the manager waits for the result of a command its agent has received; "
        "then the action is `timed_out` (audited; a result that comes later still counts).",
    )
    sweep_seconds: float = setting(
        5.0,
        "How often the manager expires, times out and (cluster mode) sends again the pending "
        "response commands by itself, when no request does it sooner.",
    )
    response_policy: Path | None = setting(
        None,
        "The response policy (YAML, as `provarmor agent --response-policy`) whose per-host "
        "`rate_limit` also bounds manual actions run through the API (empty: the default, "
        "20 in an hour). Undos are never limited.",
    )

    def __post_init__(self) -> None:
        if not self.sweep_seconds > 0:
            raise ConfigError(
                f"sweep_seconds must be above 0, not {self.sweep_seconds}",
                location="manager.sweep_seconds",
            )
        kinds = {kind.value for kind in ActionKind}
        for name in self.approval_required:
            if name not in kinds:
                raise ConfigError(
                    f"not a response action: {name!r} (one of {', '.join(sorted(kinds))})",
                    location="manager.approval_required",
                )

    def bus_signer(self) -> AccountSigner | None:
        """The signer of agents' bus credentials; ``None`` when agents upload over HTTP or
        the bus is open (no signing key: a bus without authentication, whose address the
        agents are given with ``--bus``)."""
        if not self.bus_url or self.bus_signing_key is None:
            return None
        return AccountSigner.load(self.bus_signing_key)

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'manager.db'}"

    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


GIB = 1024**3


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionSettings:
    """What the manager keeps, by age (data time: an event's own timestamp, an alert's or
    incident's last signal, a graph edge's last event) and by size. 0 turns a bound off.

    Kept whatever their age: incidents still open (`new`, `acknowledged`) or with a response
    action not yet finished, the alerts of every kept incident, and in each host's graph the
    nodes of its kept incidents with the edges between them."""

    enabled: bool = setting(
        True,
        "Enforce retention in the manager and in bus workers (false: keep everything). Ages "
        "are data time: an event's own timestamp, an alert's or incident's last signal, a "
        "graph edge's last event.",
    )
    interval_seconds: int = setting(300, "How often retention runs.")
    after_events: int = setting(
        1_000_000, "Also run as soon as this many events were stored since the last run."
    )
    batch_rows: int = setting(
        5_000,
        "Rows deleted per transaction: ingest waits for at most one such batch (of a host's "
        "graph: only that host's ingest).",
    )
    events_days: float = setting(
        7.0, "Events older than this are deleted (an incident keeps its story, not its events)."
    )
    alerts_days: float = setting(
        90.0, "Alerts older than this are deleted, except those a stored incident names."
    )
    incidents_days: float = setting(
        90.0,
        "Incidents older than this are deleted, with their notes and status changes, once "
        "resolved or false positive and with no response action pending (proposed, approved, "
        "queued, delivered); open ones (new, acknowledged) are kept.",
    )
    findings_max_bytes: int = setting(
        8 * GIB,
        "Size bound of the findings store (SQLite: the file's used pages, freed ones given "
        "back; PostgreSQL: the schema's tables and indexes, whose files keep their size and "
        "reuse deleted rows' space): past it the first stored events go.",
    )
    graph_days: float = setting(
        7.0,
        "Each host's graph edges and indexed events older than this are deleted, then the "
        "nodes no edge refers to any more, except the nodes of stored incidents and the edges "
        "between two of them.",
    )
    graph_max_bytes: int = setting(
        4 * GIB,
        "Size bound of each host's graph store (measured as `findings_max_bytes`): past "
        "it its oldest edges and indexed events go, as by age.",
    )

    def __post_init__(self) -> None:
        for name in (
            "interval_seconds",
            "after_events",
            "events_days",
            "alerts_days",
            "incidents_days",
            "findings_max_bytes",
            "graph_days",
            "graph_max_bytes",
        ):
            if getattr(self, name) < 0:
                raise ConfigError("must be 0 or more", location=f"retention.{name}")
        if self.batch_rows < 1 or self.interval_seconds < 1:
            name = "batch_rows" if self.batch_rows < 1 else "interval_seconds"
            raise ConfigError("must be 1 or more", location=f"retention.{name}")
