"""The Linux audit source: parse audit records (``audit.log`` text or raw netlink text),
group the records of each event, and map each event to canonical events.

The importer for recorded logs is :func:`provarmor.sources.auditd.importer.read_auditd`; the
live agent reuses :mod:`~provarmor.sources.auditd.stream` with records it reads from netlink.
"""
