"""The one list of importers: format name -> reader. Add a new importer here."""

from __future__ import annotations

from provarmor.sources.auditd.importer import read_auditd
from provarmor.sources.base import Importer
from provarmor.sources.cdm import read_cdm
from provarmor.sources.hostlog import read_journal, read_syslog
from provarmor.sources.ndjson import read_ndjson
from provarmor.sources.sysdig import read_sysdig

IMPORTERS: dict[str, Importer] = {
    "ndjson": read_ndjson,
    "auditd": read_auditd,
    "cdm": read_cdm,
    "sysdig": read_sysdig,
    "journal": read_journal,
    "syslog": read_syslog,
}
