"""Outputs that write files: alerts as JSON lines, incidents as JSON lines or as one
document per incident. The format is a name from the format registries
(:data:`~provarmor.outputs.alert_formats.FORMATS`,
:data:`~provarmor.outputs.incident_formats.INCIDENT_FORMATS`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import msgspec

from provarmor.model.alert import Alert
from provarmor.model.errors import ConfigError
from provarmor.model.incident import Incident
from provarmor.outputs.alert_formats import FORMATS
from provarmor.outputs.incident_formats import INCIDENT_FORMATS, IncidentRendering

_encoder = msgspec.json.Encoder()


def _known(kind: str, name: str, names: list[str]) -> None:
    if name not in names:
        raise ConfigError(f"unknown {kind} format {name!r}; known: {', '.join(names)}")


class AlertFile:
    """Alerts, one JSON line each, in an alert format, to a file (``append``: after what it
    holds) or to an open stream (flushed, never closed here). Each line is flushed as it is
    written, so a reader sees every alert raised so far. Incidents are not its business."""

    def __init__(self, target: Path | BinaryIO, *, format: str, append: bool = False) -> None:
        _known("alert", format, list(FORMATS))
        self._render = FORMATS[format]
        self._owned = isinstance(target, Path)
        self._handle: BinaryIO = (
            target.open("ab" if append else "wb") if isinstance(target, Path) else target
        )
        self.written = 0

    def alert(self, alert: Alert) -> None:
        self._handle.write(_encoder.encode(self._render(alert)) + b"\n")
        self._handle.flush()
        self.written += 1

    def incident(self, incident: Incident) -> None:
        del incident

    def close(self) -> None:
        if self._owned:
            self._handle.close()
        else:
            self._handle.flush()


class IncidentFile:
    """Incidents in an incident format. A JSON format writes one line per incident version
    to the file ``target`` (``append``: after what it holds); a document format (dot, svg)
    writes ``<incident id>.<format>`` in the directory ``target``, replaced whole by each
    later version. Alerts are not its business."""

    def __init__(self, target: Path, *, format: str, append: bool = False) -> None:
        _known("incident", format, list(INCIDENT_FORMATS))
        self._format = format
        self._rendering: IncidentRendering = INCIDENT_FORMATS[format]
        self._target = target
        self._handle: BinaryIO | None = None
        if self._rendering.document:
            target.mkdir(parents=True, exist_ok=True)
        else:
            self._handle = target.open("ab" if append else "wb")
        self.written = 0

    def alert(self, alert: Alert) -> None:
        del alert

    def incident(self, incident: Incident) -> None:
        rendered = self._rendering.render(incident)
        if self._handle is not None:
            self._handle.write(_encoder.encode(rendered) + b"\n")
            self._handle.flush()
        else:
            assert isinstance(rendered, str), f"{self._format} renders a document"
            path = self._target / f"{incident.id}.{self._format}"
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(rendered, encoding="utf-8")
            os.replace(temporary, path)  # a reader sees the old version or the new, whole
        self.written += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
