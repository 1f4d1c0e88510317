"""Outputs that write files: alerts as JSON lines, incidents as JSON lines or as one
document per incident. The format is a name from the format registries
(:data:`~provarmor.outputs.alert_formats.FORMATS`,
:data:`~provarmor.outputs.incident_formats.INCIDENT_FORMATS`).

Each finding is on disk when its call returns, and a write that fails (a full disk) leaves
no half line behind: the error is raised for the caller to count, and the file stays
readable and takes later findings."""

from __future__ import annotations

import contextlib
import os
from io import FileIO
from pathlib import Path
from typing import BinaryIO

import msgspec

from provarmor.model.alert import Alert
from provarmor.model.errors import ConfigError
from provarmor.model.incident import Incident
from provarmor.outputs.alert_formats import FORMATS
from provarmor.outputs.incident_formats import INCIDENT_FORMATS

_encoder = msgspec.json.Encoder()


def _known(kind: str, name: str, names: list[str]) -> None:
    if name not in names:
        raise ConfigError(f"unknown {kind} format {name!r}; known: {', '.join(names)}")


class _JsonLines:
    """JSON documents, one line each, to a file (``append``: after what it holds) or to an
    open stream (flushed after each line, never closed here)."""

    def __init__(self, target: Path | BinaryIO, *, append: bool) -> None:
        self._file: FileIO | None = None
        self._stream: BinaryIO | None = None
        if isinstance(target, Path):
            self._file = FileIO(target, "ab" if append else "wb")
        else:
            self._stream = target

    def write(self, document: object) -> None:
        line = _encoder.encode(document) + b"\n"
        if self._file is None:
            assert self._stream is not None
            self._stream.write(line)
            self._stream.flush()
            return
        start = self._file.tell()
        try:
            rest = memoryview(line)
            while rest:
                rest = rest[self._file.write(rest) :]
        except OSError:
            with contextlib.suppress(OSError):
                self._file.truncate(start)
                self._file.seek(start)
            raise

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        elif self._stream is not None:
            self._stream.flush()


class AlertFile:
    """Alerts, one JSON line each, in an alert format, to a file (``append``: after what it
    holds) or to an open stream (flushed after each line, never closed here). Incidents are
    not its business."""

    def __init__(self, target: Path | BinaryIO, *, format: str, append: bool = False) -> None:
        _known("alert", format, list(FORMATS))
        self._render = FORMATS[format]
        self._lines = _JsonLines(target, append=append)

    def alert(self, alert: Alert) -> None:
        self._lines.write(self._render(alert))

    def incident(self, incident: Incident) -> None:
        del incident

    def close(self) -> None:
        self._lines.close()


class IncidentFile:
    """Incidents in an incident format. A JSON format writes one line per incident version
    to the file ``target`` (``append``: after what it holds); a document format (dot, svg)
    writes ``<incident id>.<format>`` in the directory ``target``, replaced whole by each
    later version. Alerts are not its business."""

    def __init__(self, target: Path, *, format: str, append: bool = False) -> None:
        _known("incident", format, list(INCIDENT_FORMATS))
        self._format = format
        self._rendering = INCIDENT_FORMATS[format]
        self._target = target
        self._lines: _JsonLines | None = None
        if self._rendering.document:
            target.mkdir(parents=True, exist_ok=True)
        else:
            self._lines = _JsonLines(target, append=append)

    def alert(self, alert: Alert) -> None:
        del alert

    def incident(self, incident: Incident) -> None:
        rendered = self._rendering.render(incident)
        if self._lines is not None:
            self._lines.write(rendered)
            return
        assert isinstance(rendered, str), f"{self._format} renders a document"
        path = self._target / f"{incident.id}.{self._format}"
        temporary = path.with_name(path.name + ".tmp")
        try:
            temporary.write_text(rendered, encoding="utf-8")
            os.replace(temporary, path)  # a reader sees the old version or the new, whole
        finally:
            temporary.unlink(missing_ok=True)

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
