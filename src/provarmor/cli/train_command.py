"""``provarmor train``: fit the process-behaviour anomaly model on benign recordings.

Inputs are lab dataset directories (their ``dataset.json`` must say ``kind: benign``; only
``dataset.json`` and ``events.ndjson.gz`` are opened, never the label files) or canonical NDJSON
files. The threshold is calibrated on validation data: ``--validation`` datasets, or else the
latest fraction (by process start) of each training dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError

if TYPE_CHECKING:
    from provarmor.detection.anomaly.profile import Profile
    from provarmor.detection.anomaly.train import TrainingData

console = Console(stderr=True)


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedInput:
    profiles: list[list[Profile]]
    info: dict[str, Any]


def load_benign(path: Path, *, role: str) -> LoadedInput:
    """Profiles of one benign input; refuses anything not declared benign."""
    import msgspec

    from provarmor.detection.anomaly.profile import build_histories
    from provarmor.evaluation.dataset import EVENTS_FILE, META_FILE, DatasetMeta
    from provarmor.sources.base import HostContext, IngestReport
    from provarmor.sources.registry import IMPORTERS

    if path.is_dir():
        meta_path = path / META_FILE
        try:
            meta = msgspec.json.decode(meta_path.read_bytes(), type=DatasetMeta)
        except OSError:
            raise ConfigError(f"dataset is missing {META_FILE}", location=str(path)) from None
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ConfigError(f"bad dataset metadata: {exc}", location=str(meta_path)) from None
        if meta.kind != "benign":
            raise ConfigError(
                f"dataset kind is {meta.kind!r}: the anomaly model trains on benign data only",
                location=str(path),
            )
        events_path, name = path / EVENTS_FILE, meta.name
    elif path.name.endswith((".ndjson", ".ndjson.gz")):
        events_path, name = path, path.name
    else:
        raise ConfigError(
            "expected a lab dataset directory or an .ndjson(.gz) file", location=str(path)
        )
    if not events_path.is_file():
        raise ConfigError("no events file", location=str(events_path))
    report = IngestReport(source=str(events_path))
    events = IMPORTERS["ndjson"](events_path, report=report, host=HostContext())
    profiles = build_histories(events)
    info = {
        "name": name,
        "path": str(path),
        "role": role,
        "sha256": hashlib.sha256(events_path.read_bytes()).hexdigest(),
        "events": report.events,
        "rejected": report.rejected,
        "processes": len(profiles),
    }
    return LoadedInput(profiles=profiles, info=info)


def gather(datasets: list[Path], *, validation: list[Path], fraction: float) -> TrainingData:
    """Training and validation profiles, and the inputs' descriptions."""
    from provarmor.detection.anomaly.train import TrainingData, split_by_time

    if not 0.0 < fraction < 1.0:
        raise ConfigError(
            "--validation-fraction must be between 0 and 1", location="--validation-fraction"
        )
    training: list[Sequence[Profile]] = []
    held_out: list[Sequence[Profile]] = []
    infos = []
    for path in datasets:
        loaded = load_benign(path, role="training")
        if validation:
            training.extend(loaded.profiles)
        else:
            earlier, later = split_by_time(loaded.profiles, fraction)
            training.extend(earlier)
            held_out.extend(later)
            loaded.info["held_out_processes"] = len(later)
        infos.append(loaded.info)
    for path in validation:
        loaded = load_benign(path, role="validation")
        held_out.extend(loaded.profiles)
        infos.append(loaded.info)
    return TrainingData(training=training, validation=held_out, datasets=infos)


def train_command(
    datasets: Annotated[
        list[Path], typer.Argument(help="Benign lab dataset directories or NDJSON files.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the model bundle here.")],
    validation: Annotated[
        list[Path] | None,
        typer.Option("--validation", help="Benign validation data (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    validation_fraction: Annotated[
        float, typer.Option(help="Held-out fraction when no --validation is given.")
    ] = 0.2,
) -> None:
    """Train the anomaly model on benign data only; calibrate its threshold on validation data."""
    from provarmor.detection.anomaly.bundle import save_bundle
    from provarmor.detection.anomaly.settings import TrainingSettings
    from provarmor.detection.anomaly.train import train_model

    started = time.monotonic()
    data = gather(datasets, validation=validation or [], fraction=validation_fraction)
    settings = TrainingSettings(seed=seed, validation_fraction=validation_fraction)
    model = train_model(data, settings)
    digest = save_bundle(model, out)
    _print_summary(model.metadata, out=out, digest=digest, seconds=time.monotonic() - started)


def _print_summary(metadata: dict[str, Any], *, out: Path, digest: str, seconds: float) -> None:
    table = Table(title=f"Anomaly model {escape(str(out))}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("training processes", str(metadata["training_processes"]))
    table.add_row("validation processes", str(metadata["validation_processes"]))
    table.add_row("validation behaviours", str(metadata["validation_behaviours"]))
    table.add_row("executables and contexts", str(metadata["executables"]))
    table.add_row("vocabulary", str(metadata["vocabulary"]))
    table.add_row("threshold", f"{metadata['threshold']:.4f}")
    for name, value in metadata["validation_quantiles"].items():
        table.add_row(f"validation {name}", f"{value:.4f}")
    table.add_row("seconds", f"{seconds:.1f}")
    table.add_row("bundle sha256", digest[:16])
    Console().print(table)


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(name="train", rich_help_panel=panel)(train_command)
