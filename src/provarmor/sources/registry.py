"""The one list of importers: format name -> reader. Add a new importer here."""

from __future__ import annotations

from provarmor.sources.base import Importer
from provarmor.sources.ndjson import read_ndjson

IMPORTERS: dict[str, Importer] = {
    "ndjson": read_ndjson,
}
