"""Loads configuration: YAML file, then ``PROVARMOR_<SECTION>__<KEY>`` environment variables,
then ``--set section.key=value`` overrides, onto the settings dataclasses each package declares.

A configuration is a frozen dataclass whose fields are the sections (each a settings
dataclass, named by the field): :func:`load_config` returns an instance of it, so callers read
``config.graph.max_nodes``, typed, never a section by its name. Unknown sections and keys are
errors (with the source that named them). The only module that reads configuration files or
the environment."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from provarmor.detection.anomaly.settings import AnomalySettings, LearningSettings
from provarmor.detection.settings import DetectionSettings
from provarmor.graph.settings import GraphSettings
from provarmor.investigation.settings import IncidentSettings, InvestigationSettings
from provarmor.model.errors import ConfigError

Sections = Mapping[str, type[Any]]
ENV_PREFIX = "PROVARMOR_"
C = TypeVar("C")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisConfig:
    """The sections the analysis reads (each field is a section): what
    :func:`~provarmor.pipeline.assembly.plan_from_config` builds every analysis from. The
    command line's configuration adds the agent's and the manager's sections."""

    anomaly: AnomalySettings = dataclasses.field(default_factory=AnomalySettings)
    detection: DetectionSettings = dataclasses.field(default_factory=DetectionSettings)
    graph: GraphSettings = dataclasses.field(default_factory=GraphSettings)
    incident: IncidentSettings = dataclasses.field(default_factory=IncidentSettings)
    investigation: InvestigationSettings = dataclasses.field(default_factory=InvestigationSettings)
    learning: LearningSettings = dataclasses.field(default_factory=LearningSettings)


def sections_of(config_type: type[Any]) -> dict[str, type[Any]]:
    """Section name -> settings class, from the fields of a configuration dataclass."""
    hints = typing.get_type_hints(config_type)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_type)}


def _coerce(value: object, annotation: object, *, where: str) -> object:
    """Convert ``value`` (from YAML or a string) to the declared type."""
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "bool": bool, "str": str, "Path": Path}.get(
            annotation, annotation
        )
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or value == "":
            return None
        annotation = options[0]
    if origin is tuple:
        # a YAML list, or one item given as a string (environment, --set)
        items = value if isinstance(value, list | tuple) else [value]
        (item_type, *_) = typing.get_args(annotation) or (object,)
        return tuple(_coerce_plain(item, item_type, where=where) for item in items)
    return _coerce_plain(value, annotation, where=where)


def _coerce_plain(value: object, annotation: object, *, where: str) -> object:
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"expected true or false, got {value!r}", location=where)
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"expected a number, got {value!r}", location=where)
        try:
            return int(str(value), 0) if annotation is int else float(str(value))
        except (TypeError, ValueError):
            raise ConfigError(f"expected a number, got {value!r}", location=where) from None
    if annotation is Path:
        return Path(str(value))
    if annotation is str:
        return str(value)
    if isinstance(annotation, type) and issubclass(annotation, str):  # StrEnum
        try:
            return annotation(str(value))
        except ValueError:
            raise ConfigError(f"unknown value {value!r}", location=where) from None
    return value


def load_config(
    config_type: type[C],
    *,
    path: Path | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    environ: Mapping[str, str] | None = None,
) -> C:
    """An instance of ``config_type`` (a dataclass of sections), every section filled from
    its defaults, the file, the environment and the overrides."""
    sections = sections_of(config_type)
    raw: dict[str, dict[str, tuple[object, str]]] = {name: {} for name in sections}
    if path is not None:
        import yaml  # only with a configuration file: the command line starts without it

        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read configuration: {exc}", location=str(path)) from None
        if not isinstance(document, dict):
            raise ConfigError("expected a mapping of sections", location=str(path))
        for section, values in document.items():
            if not isinstance(values, dict):
                raise ConfigError("expected a mapping of keys", location=f"{path}: {section}")
            for key, value in values.items():
                _put(raw, sections, str(section), str(key), value, where=f"{path}: {section}.{key}")
    for name, value in (environ if environ is not None else os.environ).items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
            _put(raw, sections, section, key, value, where=f"environment {name}")
    for item in overrides:
        dotted, sep, value = item.partition("=")
        section, dot, key = dotted.partition(".")
        if not sep or not dot:
            raise ConfigError("expected section.key=value", location=f"--set {item}")
        _put(raw, sections, section, key, value, where=f"--set {item}")
    return config_type(**{name: _build(sections[name], raw[name]) for name in sections})


def _put(  # noqa: PLR0913
    raw: dict[str, dict[str, tuple[object, str]]],
    sections: Sections,
    section: str,
    key: str,
    value: object,
    *,
    where: str,
) -> None:
    if section not in sections:
        raise ConfigError(
            f"unknown section {section!r}; known: {', '.join(sorted(sections))}", location=where
        )
    names = {field.name for field in dataclasses.fields(sections[section])}
    if key not in names:
        raise ConfigError(f"unknown key {key!r} in section {section!r}", location=where)
    raw[section][key] = (value, where)


def _build(cls: type[Any], values: dict[str, tuple[object, str]]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {
        key: _coerce(value, hints[key], where=where) for key, (value, where) in values.items()
    }
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a check across keys: name where the key it blames was set
        key = (exc.location or "").rpartition(".")[2]
        if key not in values:
            raise
        raise ConfigError(exc.message, location=values[key][1]) from None


def schema_markdown(config_type: type[Any]) -> str:
    """The configuration reference (docs/reference/config.md), generated from declarations."""
    sections = sections_of(config_type)
    lines = [
        "# Configuration reference",
        "",
        "Generated by `provarmor config schema`; do not edit. Set values in a YAML file "
        "(`section: {key: value}`), as `PROVARMOR_SECTION__KEY` environment variables, or with "
        "`--set section.key=value` (before the command).",
        "",
    ]
    for name, cls in sorted(sections.items()):
        lines += [f"## `{name}`", "", "| key | type | default | maturity | description |"]
        lines.append("|---|---|---|---|---|")
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            annotation = hints[field.name]
            type_name = getattr(annotation, "__name__", str(annotation))
            default = field.default
            shown = default.value if hasattr(default, "value") else default
            lines.append(
                f"| `{field.name}` | {type_name} | `{shown}` | "
                f"{field.metadata.get('maturity', 'stable')} | "
                f"{field.metadata.get('description', '')} |"
            )
        lines.append("")
    return "\n".join(lines)
