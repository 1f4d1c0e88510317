"""Settings of the manager service (``provarmor server``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
        "(`?schema=` picks a schema). Empty: `manager.db` under `state_dir`.",
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
    enrollment_token_seconds: int = setting(86_400, "How long an enrolment token stays valid.")
    user_token_seconds: int = setting(
        90 * 86_400,
        "How long a new user API token (analyst, admin) stays valid unless its creator says "
        "otherwise (0: never expires).",
    )
    checkpoints: bool = setting(
        True,
        "Store each host's analysis state with every batch and restore it when the host's "
        "analysis is opened again (after a restart, or on another worker), so incidents "
        "continue exactly; off: a restart starts each host's analysis afresh.",
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

    def __post_init__(self) -> None:
        kinds = {kind.value for kind in ActionKind}
        for name in self.approval_required:
            if name not in kinds:
                raise ConfigError(
                    f"not a response action: {name!r} (one of {', '.join(sorted(kinds))})",
                    location="manager.approval_required",
                )

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'manager.db'}"

    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)
