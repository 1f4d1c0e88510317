"""Help pages show flags without a value type, for the commands and the sub-applications of
an application made with :func:`plain_flags`, and leave options that take a value alone."""

import re
from typing import Annotated

import typer
from typer.testing import CliRunner

from provarmor.cli.help_style import plain_flags


def _application() -> typer.Typer:
    app = typer.Typer()
    sub = typer.Typer()

    @app.command()
    def run(
        force: Annotated[bool, typer.Option(help="Do it anyway.")] = False,
        count: Annotated[int, typer.Option(help="How many.")] = 1,
    ) -> None:
        """Run."""

    @sub.command()
    def show(verbose: Annotated[bool, typer.Option("--verbose", help="More.")] = False) -> None:
        """Show."""

    app.add_typer(sub, name="sub")
    return app


def _help(app: typer.Typer, *args: str) -> str:
    result = CliRunner(env={"COLUMNS": "120"}).invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def _option_line(text: str, option: str) -> str:
    return next(line for line in text.splitlines() if re.search(rf"{option}\b", line))


def test_typer_alone_shows_a_type_for_flags():
    """The reason for the module: without it a flag reads as if it took a value."""
    assert "<bool>" in _option_line(_help(_application(), "run"), "--force")


def test_flags_show_no_type_in_commands_and_sub_applications():
    app = _application()
    plain_flags(app)
    run_help = _help(app, "run")
    assert "<bool>" not in _option_line(run_help, "--force")
    assert "<int" in _option_line(run_help, "--count")
    assert "<bool>" not in _option_line(_help(app, "sub", "show"), "--verbose")
    assert "<bool>" not in _option_line(_help(app, "sub"), "--help")
