"""Importer for sysdig-style JSON lines: ``sysdig -j`` output and the NodLink public data set.

One JSON object per line with sysdig field names (``evt.num``, ``evt.time``, ``evt.type``,
``evt.dir``, ``evt.args``, ``proc.pid``, ``proc.cmdline``, ``proc.pcmdline``, ``fd.name`` ...),
plain or gzip. :func:`read_sysdig` keeps a bounded process table so that each process gets
``process_entity_id(host, boot, pid, start)``, where ``start`` is the first time its pid was
seen after the fork/clone that created it (or, for a process running before the capture,
the first record showing it); see :mod:`provarmor.sources.sysdig.processes`.

Ground-truth labels (``is_warn``, ``label``, ``tech_num`` ...) are dropped on read and counted
in ``IngestReport.dropped_fields``; they never reach an event.
"""

from provarmor.sources.sysdig.reader import read_sysdig

__all__ = ["read_sysdig"]
