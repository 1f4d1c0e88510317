"""The one list of importers (format name -> reader) and the one list of live sensors
(backend name -> adapter). A new source is a package under ``sources/`` plus one line here;
the command line's ``--format`` and ``--sensor`` choices and the agent's ``sensor`` setting
are made from these lists."""

from __future__ import annotations

from enum import StrEnum

from provarmor.sources.auditd.importer import read_auditd
from provarmor.sources.auditd.sensor import AuditSensor
from provarmor.sources.base import Importer, SensorFactory
from provarmor.sources.cdm import read_cdm
from provarmor.sources.ebpf.sensor import EbpfSensor
from provarmor.sources.ndjson import read_ndjson
from provarmor.sources.sysdig import read_sysdig

IMPORTERS: dict[str, Importer] = {
    "auditd": read_auditd,
    "cdm": read_cdm,
    "sysdig": read_sysdig,
    "ndjson": read_ndjson,
}
"""Importers in the order the command line lists them."""

SENSORS: dict[str, SensorFactory] = {
    "ebpf": EbpfSensor,
    "audit": AuditSensor,
}
"""Live backends in the order the agent's ``auto`` tries them."""

ImportFormat = StrEnum(  # type: ignore[misc]  # members come from the registry
    "ImportFormat", {name: name for name in IMPORTERS}
)
"""The names of :data:`IMPORTERS` (``--format``)."""
