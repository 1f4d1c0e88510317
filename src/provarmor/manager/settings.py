"""Settings of the manager service (``provarmor server``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provarmor.model.setting import Maturity, setting


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
    keep_event_json: bool = setting(
        True, "Store each uploaded event's JSON for search results (else indexed fields only)."
    )

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'manager.db'}"

    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)
