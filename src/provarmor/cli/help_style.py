"""How help pages show options: flags (``--force``, ``--help``) without a value column.

Typer shows a type next to every option, ``<bool>`` for flags too, which reads as if the flag
took a value. The command classes here blank the type of flag options, and
:func:`plain_flags` makes every command and group of an application use them.
"""

from __future__ import annotations

import typer
from typer import core
from typer._click import Context, Parameter


def _without_flag_types(params: list[Parameter]) -> list[Parameter]:
    for param in params:
        if isinstance(param, core.TyperOption) and param.is_flag:
            param.metavar = ""
    return params


class FlagCommand(core.TyperCommand):
    """A command whose help shows flags without a value type."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _without_flag_types(super().get_params(ctx))


class FlagGroup(core.TyperGroup):
    """A command group whose help shows flags without a value type."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _without_flag_types(super().get_params(ctx))


def plain_flags(app: typer.Typer) -> None:
    """Make ``app``, its commands and its sub-applications use the classes above."""
    app.info.cls = FlagGroup
    for command in app.registered_commands:
        if command.cls in (None, core.TyperCommand):
            command.cls = FlagCommand
    for group in app.registered_groups:
        group.cls = FlagGroup
        if group.typer_instance is not None:
            plain_flags(group.typer_instance)
