"""The Typer application: one sub-module per command group, registered here under the help
panel it belongs to.

Command modules import only Typer, Rich and light settings modules at the top; the heavy
parts (FastAPI, uvicorn, numpy, pySigma, the manager, the agent) are imported inside the
commands that use them, so ``provarmor --help`` and light commands start fast.

Option rules, the same in every command: ``--out``/``-o`` is where a command writes;
``--format``/``-f`` is the input format (told from the content when left out);
``--set section.key=value`` (before the command) overrides a setting.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from provarmor import __version__
from provarmor.cli import (
    agent_commands,
    calibrate_command,
    cluster_command,
    config_command,
    demo_command,
    detect_commands,
    eval_command,
    graph_commands,
    lab_commands,
    replay_command,
    response_commands,
    server_commands,
    train_command,
    up_command,
    worker_command,
)
from provarmor.cli.help_style import plain_flags
from provarmor.cli.terminal import escape
from provarmor.model.errors import ProvArmorError

SERVICE = "Run on hosts: agent, manager, console"
RECORDED = "Recorded data and the graph"
MODELS = "Rules, models and the lab"
SETTINGS = "Settings"


def _print_version(value: bool) -> None:
    if value:
        Console().print(f"provarmor {__version__}")
        raise typer.Exit()


def callback(
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML configuration file.", exists=True)
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a setting: section.key=value (repeatable)."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """ProvArmor: provenance-based endpoint intrusion detection and forensics for Linux."""
    del version
    config_command.set_options(config=config, overrides=setting)


app = typer.Typer(
    name="provarmor",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    callback=callback,
)
up_command.register(app, panel=SERVICE)
agent_commands.register(app, panel=SERVICE)
response_commands.register(app, panel=SERVICE)
server_commands.register(app, panel=SERVICE)
worker_command.register(app, panel=SERVICE)
cluster_command.register(app, panel=SERVICE)
replay_command.register(app, panel=SERVICE)
graph_commands.register(app, panel=RECORDED)
detect_commands.register(app, panel=RECORDED)
demo_command.register(app, panel=RECORDED)
detect_commands.register_rules(app, panel=MODELS)
lab_commands.register(app, panel=MODELS)
train_command.register(app, panel=MODELS)
calibrate_command.register(app, panel=MODELS)
eval_command.register(app, panel=MODELS)
config_command.register(app, panel=SETTINGS)


@app.command(rich_help_panel=SETTINGS)
def version() -> None:
    """Print the version."""
    Console().print(f"provarmor {__version__}")


plain_flags(app)


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
