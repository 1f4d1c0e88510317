"""``provarmor server``: run the manager (FastAPI under uvicorn), make user and enrolment
tokens, make TLS certificates, and export analysts' confirmed exceptions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from provarmor.cli.config_command import OPTIONS
from provarmor.manager.app import create_app
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.detectors import DetectionKit, load_detection
from provarmor.manager.routes.exceptions import exceptions_yaml
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.settings import ManagerSettings
from provarmor.manager.sql_store import SqlFindingsStore
from provarmor.manager.tls import write_certificates
from provarmor.model.errors import ConfigError

console = Console(stderr=True)
server_app = typer.Typer(help="The manager service: API for agents and analysts.")
token_app = typer.Typer(help="User API tokens.", no_args_is_help=True)
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
    loaded = OPTIONS.load().get("manager")
    settings = loaded if isinstance(loaded, ManagerSettings) else ManagerSettings()
    given = {key: value for key, value in changes.items() if value is not None}
    return dataclasses.replace(settings, **given)  # type: ignore[arg-type]


def detection_kit(settings: ManagerSettings) -> DetectionKit:
    """Rules and model, or learning mode, with the `learning` and `anomaly` settings."""
    sections = OPTIONS.load()
    return load_detection(settings, learning=sections["learning"], anomaly=sections["anomaly"])


def open_manager_store(settings: ManagerSettings) -> SqlFindingsStore:
    return open_findings_store(settings.effective_database_url())


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
) -> None:
    """Serve the API (OpenAPI at /docs). On the first start an admin token is made and
    printed once."""
    if context.invoked_subcommand is not None:
        return
    import uvicorn

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
    store = open_manager_store(settings)
    if not store.has_admin():
        issued = create_token(store, role=Role.ADMIN, label="first admin")
        console.print("first start: admin token (shown once, keep it):")
        typer.echo(issued.token)
    app = create_app(settings, store, kit=detection_kit(settings))
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
        store.close()


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="analyst or admin.")] = Role.ANALYST,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    db: DbOption = None,
    state_dir: StateOption = None,
) -> None:
    """Make a user API token and print it (once)."""
    if role not in (Role.ANALYST, Role.ADMIN):
        raise ConfigError("a user token is analyst or admin", location="--role")
    store = open_manager_store(server_settings(database_url=db, state_dir=state_dir))
    try:
        typer.echo(create_token(store, role=role, label=label).token)
    finally:
        store.close()


@server_app.command("enrollment-token")
def enrollment_token(
    valid_seconds: Annotated[
        int | None, typer.Option(min=1, help="Lifetime (default from config: one day).")
    ] = None,
    db: DbOption = None,
    state_dir: StateOption = None,
) -> None:
    """Make a one-time agent enrolment token and print it."""
    settings = server_settings(database_url=db, state_dir=state_dir)
    store = open_manager_store(settings)
    seconds = valid_seconds or settings.enrollment_token_seconds
    try:
        issued = create_token(store, role=Role.ENROLL, valid_ns=seconds * 1_000_000_000)
        typer.echo(issued.token)
    finally:
        store.close()


@server_app.command("certs")
def certs(
    out: Annotated[Path, typer.Option("--out", help="Directory for the PEM files.")],
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Server name or IP address (repeat; default localhost)."),
    ] = None,
) -> None:
    """Make a private CA and a server certificate; agents trust ca.pem."""
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
    store = open_manager_store(server_settings(database_url=db, state_dir=state_dir))
    try:
        text = exceptions_yaml(store, host=host)
    finally:
        store.close()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")
