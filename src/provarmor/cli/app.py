"""The Typer application: one sub-module per command group, registered here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from provarmor import __version__
from provarmor.cli import (
    agent_commands,
    calibrate_command,
    config_command,
    demo_command,
    detect_commands,
    eval_command,
    graph_commands,
    lab_commands,
    replay_command,
    server_commands,
    train_command,
    up_command,
)
from provarmor.cli.terminal import escape
from provarmor.model.errors import ProvArmorError

app = typer.Typer(
    name="provarmor",
    help="ProvArmor: provenance-based endpoint intrusion detection and forensics for Linux.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    callback=config_command.callback,
)
app.add_typer(config_command.config_app, name="config")
graph_commands.register(app)
demo_command.register(app)
detect_commands.register(app)
agent_commands.register(app)
lab_commands.register(app)
eval_command.register(app)
train_command.register(app)
calibrate_command.register(app)
server_commands.register(app)
up_command.register(app)
replay_command.register(app)


@app.command()
def version() -> None:
    """Print the version."""
    Console().print(f"provarmor {__version__}")


def main() -> None:
    """Entry point: known errors become one clear line and exit code 2, never a traceback."""
    try:
        app()
    except ProvArmorError as exc:
        Console(stderr=True).print(
            f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False
        )
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
