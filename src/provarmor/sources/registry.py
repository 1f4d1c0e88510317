"""The one list of importers (format name -> reader) and the one list of live sensors
(backend name -> adapter). A new source is a package under ``sources/`` plus one line here;
the command line's ``--format`` and ``--sensor`` choices and the agent's ``sensor`` setting
are made from these lists.

Entries name their function or class as ``module:name`` and are imported on first use: the
command line reads these lists to build its choices on every start, and importing every
parser and kernel reader for that would double its start-up time.
"""

from __future__ import annotations

from enum import StrEnum
from importlib import import_module
from typing import Any

from provarmor.sources.base import Importer, SensorFactory


def deferred(target: str) -> Any:
    """The function or class ``module:name``, imported when first called."""
    module, _, name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = name
    return call


IMPORTERS: dict[str, Importer] = {
    "auditd": deferred("provarmor.sources.auditd.importer:read_auditd"),
    "cdm": deferred("provarmor.sources.cdm:read_cdm"),
    "sysdig": deferred("provarmor.sources.sysdig:read_sysdig"),
    "ndjson": deferred("provarmor.sources.ndjson:read_ndjson"),
    "journal": deferred("provarmor.sources.hostlog:read_journal"),
    "syslog": deferred("provarmor.sources.hostlog:read_syslog"),
}
"""Importers in the order the command line lists them."""

SENSORS: dict[str, SensorFactory] = {
    "ebpf": deferred("provarmor.sources.ebpf.sensor:EbpfSensor"),
    "audit": deferred("provarmor.sources.auditd.sensor:AuditSensor"),
}
"""Live backends in the order the agent's ``auto`` tries them."""

ImportFormat = StrEnum(  # type: ignore[misc]  # members come from the registry
    "ImportFormat", {name: name for name in IMPORTERS}
)
"""The names of :data:`IMPORTERS` (``--format``)."""
