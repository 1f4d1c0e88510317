"""``provarmor calibrate``: choose when a campaign is an incident, on benign validation runs.

    provarmor calibrate MODEL --validation DIR... [--rules DIR...] [--target 0.0417]

Runs the whole analysis (the rules and the model) over benign validation datasets (never
their labels), collects the score of every campaign it builds there, and picks the smallest
incident threshold that keeps false incidents at or below ``--target`` per validation
host-hour. The rule is stored in the model bundle (which gets a new digest); `detect` and
`eval` use it whenever that model is loaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError

console = Console()


def calibrate_command(
    model: Annotated[Path, typer.Argument(help="Model bundle to calibrate (rewritten).")],
    validation: Annotated[
        list[Path], typer.Option("--validation", help="Benign validation dataset directories.")
    ],
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="Sigma rules (default: the bundled pack)."),
    ] = None,
    target: Annotated[
        float, typer.Option(help="False incidents allowed per validation host-hour.")
    ] = 1 / 24,
) -> None:
    """Calibrate the incident rule of MODEL (with the rules) on benign validation runs."""
    import msgspec

    from provarmor.detection.anomaly.bundle import load_bundle, save_bundle
    from provarmor.detection.sigma.loader import bundled_rules
    from provarmor.evaluation.protocol import benign_dataset, calibrate
    from provarmor.pipeline.assembly import describe_rule, plan_from_config

    rule_paths = tuple(rules or [bundled_rules()])
    for path in rule_paths:
        if not path.exists():
            raise ConfigError(f"no rules at {path}")
    if target < 0:
        raise ConfigError("--target must not be negative")
    loaded = load_bundle(model)
    datasets = [benign_dataset(path, "validation") for path in validation]
    plan = plan_from_config(OPTIONS.load(), rules=rule_paths, model=loaded)
    rule = calibrate(plan, datasets, target_per_hour=target)
    metadata = dict(loaded.metadata)
    metadata["incident_rule"] = msgspec.to_builtins(rule)
    digest = save_bundle(dataclasses.replace(loaded, metadata=metadata), model)
    console.print(escape(describe_rule(rule)))
    console.print(f"wrote {escape(str(model))} (sha256 {digest[:16]}…)")


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(name="calibrate", rich_help_panel=panel)(calibrate_command)
