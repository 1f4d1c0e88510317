"""Importer for DARPA Transparent Computing CDM18 JSON (CADETS, THEIA and other TA1 feeds).

One record per line (``{"datum": {"<Type>": {...}}}``), plain or gzip. :func:`read_cdm`
streams the file once, remembering subjects, objects and principals by UUID in bounded
tables (:mod:`provarmor.sources.cdm.entities`).

Identity choice: a process's ``entity_id`` is its CDM Subject UUID (canonical dashed form).
CDM UUIDs are stable for the life of a process and unique across the trace, and exec keeps
the subject, so this is the same identity rule as ``process_entity_id`` (host, boot, pid,
start) without having to trust ``cid`` (THEIA writes 0 for cloned tasks) or
``startTimestampNanos`` (CADETS writes 0 for processes started before the trace).
"""

from provarmor.sources.cdm.entities import CdmLimits
from provarmor.sources.cdm.reader import read_cdm

__all__ = ["CdmLimits", "read_cdm"]
