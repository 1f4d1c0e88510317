"""Configuration: the sections every command reads (:class:`Config`), the global
``--config``/``--set`` options, and ``provarmor config schema`` (the generated reference)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

import typer

from provarmor.agent.settings import AgentSettings
from provarmor.cli.cluster import ClusterSettings
from provarmor.manager.settings import ManagerSettings, RetentionSettings
from provarmor.pipeline.config import AnalysisConfig, load_config, schema_markdown
from provarmor.response.settings import ResponseSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class Config(AnalysisConfig):
    """Every section: the analysis's, the agent's, the manager's (and its retention's),
    response's and the cluster's."""

    agent: AgentSettings = field(default_factory=AgentSettings)
    manager: ManagerSettings = field(default_factory=ManagerSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    response: ResponseSettings = field(default_factory=ResponseSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)


@dataclass(slots=True)
class Options:
    path: Path | None = None
    overrides: list[str] = field(default_factory=list)

    def load(self) -> Config:
        return load_config(Config, path=self.path, overrides=self.overrides)


OPTIONS = Options()
"""Filled by the app callback from ``--config`` and ``--set``; read by commands."""

config_app = typer.Typer(help="Configuration.", no_args_is_help=True)


@config_app.command()
def schema() -> None:
    """Print the configuration reference (Markdown), generated from the declarations."""
    sys.stdout.write(schema_markdown(Config) + "\n")


@config_app.command()
def show() -> None:
    """Print the effective configuration (defaults, file, environment, --set)."""
    config = OPTIONS.load()
    for section in sorted(dataclasses.fields(config), key=lambda f: f.name):
        sys.stdout.write(f"{section.name}:\n")
        for key, value in dataclasses.asdict(getattr(config, section.name)).items():
            sys.stdout.write(f"  {key}: {value}\n")


def set_options(*, config: Path | None, overrides: list[str] | None) -> None:
    """Keep the global ``--config`` and ``--set`` values for the command that runs."""
    OPTIONS.path = config
    OPTIONS.overrides = list(overrides or [])


def register(app: typer.Typer, *, panel: str) -> None:
    app.add_typer(config_app, name="config", rich_help_panel=panel)
