"""``provarmor server``: run the manager (FastAPI under uvicorn), make user and enrolment
tokens, make TLS certificates, and export analysts' confirmed exceptions."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from provarmor.cli.config_command import OPTIONS
from provarmor.manager.auth import Role
from provarmor.manager.settings import ManagerSettings
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import ns_to_seconds, seconds_to_ns

if TYPE_CHECKING:
    from provarmor.manager.detectors import DetectionKit
    from provarmor.manager.sql_store import SqlFindingsStore

console = Console(stderr=True)
server_app = typer.Typer(help="The manager service: API for agents and analysts.")
token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
server_app.add_typer(token_app, name="token")
exceptions_app = typer.Typer(help="Analysts' exceptions.", no_args_is_help=True)
server_app.add_typer(exceptions_app, name="exceptions")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Findings store URL: sqlite:///PATH or postgresql://..."),
]
StateOption = Annotated[
    Path | None, typer.Option("--state-dir", help="Database and per-host graph stores.")
]


def server_settings(**changes: object) -> ManagerSettings:
    settings = OPTIONS.load().manager
    given = {key: value for key, value in changes.items() if value is not None}
    return dataclasses.replace(settings, **given)  # type: ignore[arg-type]


def detection_kit(settings: ManagerSettings) -> DetectionKit:
    """Rules and model, or learning mode, with the configured analysis settings."""
    from provarmor.manager.detectors import load_detection

    return load_detection(settings, OPTIONS.load())


def open_manager_store(settings: ManagerSettings) -> SqlFindingsStore:
    from provarmor.manager.database import open_findings_store

    return open_findings_store(settings.effective_database_url())


UP_MANAGER_DIR = "manager"
"""``provarmor up --state-dir DIR`` keeps the manager's state in ``DIR/manager/``."""


def find_manager_state(settings: ManagerSettings) -> ManagerSettings:
    """The settings with ``state_dir`` moved to ``DIR/manager`` when DIR is the state
    directory of ``provarmor up`` (no database of its own, the manager's one below it)."""
    if settings.database_url:
        return settings
    nested = settings.state_dir / UP_MANAGER_DIR
    if not (settings.state_dir / "manager.db").exists() and (nested / "manager.db").exists():
        return dataclasses.replace(settings, state_dir=nested)
    return settings


def open_existing_store(settings: ManagerSettings) -> SqlFindingsStore:
    """The manager's store, found as :func:`find_manager_state` says; a SQLite database that
    does not exist is refused (a token made in a new empty database works nowhere)."""
    from provarmor.manager.database import sqlite_path

    settings = find_manager_state(settings)
    path = sqlite_path(settings.effective_database_url())
    if path is not None and not path.exists():
        raise ConfigError(
            "no manager database here: start the manager with this state directory first "
            "(provarmor server or provarmor up), or name its database with --db",
            location=str(path),
        )
    return open_manager_store(settings)


@server_app.callback(invoke_without_command=True)
def serve(  # noqa: PLR0913 (one argument per command-line option)
    context: typer.Context,
    listen: Annotated[
        str | None, typer.Option(help="host:port to listen on (default 127.0.0.1:8443).")
    ] = None,
    db: DbOption = None,
    state_dir: StateOption = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    model: Annotated[Path | None, typer.Option(help="Anomaly model bundle.")] = None,
    insecure_no_tls: Annotated[
        bool,
        typer.Option(
            "--insecure-no-tls", help="Allow plain HTTP on a non-loopback address (warns)."
        ),
    ] = False,
) -> None:
    """Serve the API (OpenAPI at /docs). On the first start an admin token is made and
    printed once."""
    if context.invoked_subcommand is not None:
        return
    import uvicorn

    from provarmor.manager.app import create_app
    from provarmor.manager.routes.tokens import create_token
    from provarmor.manager.tls import check_plain_http

    settings = server_settings(
        listen=listen,
        database_url=db,
        state_dir=state_dir,
        tls_cert=tls_cert,
        tls_key=tls_key,
        model=model,
    )
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together", location="manager.tls_cert")
    try:
        host, port = settings.listen_address()
    except ValueError:
        raise ConfigError("listen must be host:port", location="manager.listen") from None
    settings = find_manager_state(settings)
    settings.bus_signer()  # a missing or unreadable bus signing key is refused before serving
    warning = check_plain_http(host, tls=settings.tls_cert is not None, insecure=insecure_no_tls)
    if warning is not None:
        console.print(f"[bold red]{warning}[/bold red]", highlight=False)
    store = open_manager_store(settings)
    if not store.has_admin():
        issued = create_token(
            store,
            role=Role.ADMIN,
            label="first admin",
            valid_ns=seconds_to_ns(settings.user_token_seconds, what="manager.user_token_seconds"),
        )
        console.print("first start: admin token (shown once, keep it):")
        typer.echo(issued.token)
    app = create_app(
        settings, store, kit=detection_kit(settings), retention=OPTIONS.load().retention
    )
    scheme = "https" if settings.tls_cert is not None else "http"
    console.print(f"manager on {scheme}://{host}:{port} (API docs at /docs)")
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
            log_level="info",
        )
    finally:
        app.state.context.ingestor.close()
        if app.state.context.bus_commands is not None:
            app.state.context.bus_commands.close()
        store.close()


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="analyst or admin.")] = Role.ANALYST,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    valid_days: Annotated[
        float | None,
        typer.Option(min=0, help="Lifetime in days; 0: never expires (default from config)."),
    ] = None,
    db: DbOption = None,
    state_dir: StateOption = None,
) -> None:
    """Make a user API token and print it (once)."""
    from provarmor.manager.routes.tokens import create_token

    if role not in (Role.ANALYST, Role.ADMIN):
        raise ConfigError("a user token is analyst or admin", location="--role")
    settings = server_settings(database_url=db, state_dir=state_dir)
    seconds = settings.user_token_seconds if valid_days is None else valid_days * 86_400
    store = open_existing_store(settings)
    try:
        where = "manager.user_token_seconds" if valid_days is None else "--valid-days"
        issued = create_token(
            store, role=role, label=label, valid_ns=seconds_to_ns(seconds, what=where)
        )
        typer.echo(issued.token)
    finally:
        store.close()


def _when(ns: int, *, zero: str) -> str:
    if not ns:
        return zero
    return datetime.fromtimestamp(ns_to_seconds(ns), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


@token_app.command("list")
def token_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    db: DbOption = None,
    state_dir: StateOption = None,
) -> None:
    """Every token (user, agent, enrolment): role, label, created, expires, last used,
    revoked. Never a secret."""
    from provarmor.manager.routes.tokens import TokenOut

    store = open_existing_store(server_settings(database_url=db, state_dir=state_dir))
    try:
        rows = [TokenOut.of(record) for record in store.tokens()]
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([row.model_dump() for row in rows], indent=2))
        return
    table = Table("id", "role", "label", "created", "expires", "last used", "revoked")
    for row in rows:
        table.add_row(
            row.id,
            row.role,
            row.label,
            _when(row.created_ns, zero="-"),
            _when(row.expires_ns, zero="never"),
            _when(row.last_used_ns, zero="never used"),
            _when(row.revoked_ns, zero="-"),
        )
    Console(width=200).print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (its second part).")],
    db: DbOption = None,
    state_dir: StateOption = None,
) -> None:
    """Revoke a token (user, agent credential or enrolment) at once."""
    from provarmor.manager.deps import ApiError
    from provarmor.manager.routes.tokens import revoke_token

    store = open_existing_store(server_settings(database_url=db, state_dir=state_dir))
    try:
        revoke_token(store, token_id)
    except ApiError:
        raise ConfigError("no such token", location=token_id) from None
    finally:
        store.close()
    console.print(f"revoked {token_id}")


@server_app.command("enrollment-token")
def enrollment_token(
    valid_seconds: Annotated[
        int | None, typer.Option(min=1, help="Lifetime (default from config: one day).")
    ] = None,
    db: DbOption = None,
    state_dir: StateOption = None,
) -> None:
    """Make a one-time agent enrolment token and print it."""
    from provarmor.manager.routes.tokens import create_token

    settings = server_settings(database_url=db, state_dir=state_dir)
    store = open_existing_store(settings)
    seconds = valid_seconds or settings.enrollment_token_seconds
    try:
        issued = create_token(store, role=Role.ENROLL, valid_ns=seconds_to_ns(seconds))
        typer.echo(issued.token)
    finally:
        store.close()


@server_app.command("retention")
def retention_status(
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    db: DbOption = None,
    state_dir: StateOption = None,
) -> None:
    """The last retention pass of the manager: when, how long, rows deleted per kind, bytes
    before, after and given back (the configuration's retention section sets it)."""
    store = open_existing_store(server_settings(database_url=db, state_dir=state_dir))
    try:
        text = store.retention_record()
    finally:
        store.close()
    if not text:
        console.print(
            "no retention pass yet (the manager runs one every retention.interval_seconds)"
        )
        return
    if as_json:
        typer.echo(text)
        return
    report = json.loads(text)
    findings = report["findings"]
    typer.echo(
        f"last pass: {_when(report['started_ns'], zero='never')}, {report['duration_s']} s "
        f"(longest hold {max(findings['longest_hold_s'], report['graph']['longest_hold_s']):.3f} s)"
    )
    typer.echo(
        f"findings store: {findings['bytes_before']:,} -> {findings['bytes_after']:,} bytes, "
        f"{findings['reclaimed_bytes'] + report['graph']['reclaimed_bytes']:,} bytes given back"
    )
    table = Table("deleted", "rows")
    for kind, rows in report["deleted"].items():
        table.add_row(kind, f"{rows:,}")
    Console().print(table)


@server_app.command("certs")
def certs(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the PEM files.")],
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Server name or IP address (repeat; default localhost)."),
    ] = None,
) -> None:
    """Make a private CA and a server certificate; agents trust ca.pem."""
    from provarmor.manager.tls import write_certificates

    files = write_certificates(out, hosts=host or ["localhost", "127.0.0.1"])
    for path in (files.ca_cert, files.server_cert, files.server_key, files.ca_key):
        typer.echo(str(path))


@exceptions_app.command("export")
def exceptions_export(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the YAML here (default: stdout).")
    ] = None,
    host: Annotated[str, typer.Option(help="Only the exceptions that apply to this host id.")] = "",
    db: DbOption = None,
    state_dir: StateOption = None,
) -> None:
    """The confirmed (active) exceptions as YAML for ``provarmor detect --suppressions``."""
    from provarmor.manager.routes.exceptions import exceptions_yaml

    store = open_existing_store(server_settings(database_url=db, state_dir=state_dir))
    try:
        text = exceptions_yaml(store, host=host)
    finally:
        store.close()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def register(app: typer.Typer, *, panel: str) -> None:
    app.add_typer(server_app, name="server", rich_help_panel=panel)
