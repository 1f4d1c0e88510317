"""Outputs: an :class:`~provarmor.outputs.base.Output` takes findings (alerts, incident
versions) and writes them somewhere (``files``). Formats are pure functions from a finding to
a JSON-ready dict or a document, listed in ``alert_formats.FORMATS`` and
``incident_formats.INCIDENT_FORMATS``."""
