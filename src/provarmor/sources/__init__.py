"""Sources: sensors on the live host and importers for recorded data.

A source yields canonical events. Each is a package (or module) here, registered in
``provarmor.sources.registry``: importers in ``IMPORTERS``, live sensors in ``SENSORS``.
"""
