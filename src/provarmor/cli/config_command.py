"""Configuration: the sections every command reads, the global ``--config``/``--set`` options,
and ``provarmor config schema`` (the generated reference)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from provarmor.agent.settings import AgentSettings
from provarmor.detection.anomaly.settings import AnomalySettings, LearningSettings
from provarmor.detection.settings import DetectionSettings
from provarmor.graph.settings import GraphSettings
from provarmor.investigation.settings import InvestigationSettings
from provarmor.manager.settings import ManagerSettings
from provarmor.pipeline.config import load_config, schema_markdown
from provarmor.response.settings import ResponseSettings

SECTIONS: dict[str, type[Any]] = {
    "agent": AgentSettings,
    "anomaly": AnomalySettings,
    "detection": DetectionSettings,
    "graph": GraphSettings,
    "investigation": InvestigationSettings,
    "learning": LearningSettings,
    "manager": ManagerSettings,
    "response": ResponseSettings,
}


@dataclass(slots=True)
class Options:
    path: Path | None = None
    overrides: list[str] = field(default_factory=list)

    def load(self) -> dict[str, Any]:
        return load_config(SECTIONS, path=self.path, overrides=self.overrides)


OPTIONS = Options()
"""Filled by the app callback from ``--config`` and ``--set``; read by commands."""

config_app = typer.Typer(help="Configuration.", no_args_is_help=True)


@config_app.command()
def schema() -> None:
    """Print the configuration reference (Markdown), generated from the declarations."""
    sys.stdout.write(schema_markdown(SECTIONS) + "\n")


@config_app.command()
def show() -> None:
    """Print the effective configuration (defaults, file, environment, --set)."""
    for name, settings in OPTIONS.load().items():
        sys.stdout.write(f"{name}:\n")
        for key, value in dataclasses.asdict(settings).items():
            sys.stdout.write(f"  {key}: {value}\n")


def set_options(*, config: Path | None, overrides: list[str] | None) -> None:
    """Keep the global ``--config`` and ``--set`` values for the command that runs."""
    OPTIONS.path = config
    OPTIONS.overrides = list(overrides or [])


def register(app: typer.Typer, *, panel: str) -> None:
    app.add_typer(config_app, name="config", rich_help_panel=panel)
