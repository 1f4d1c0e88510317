"""Sources: sensors on the live host and importers for recorded data.

A Source yields canonical events. Each importer is one module, registered in
``provarmor.sources.registry.IMPORTERS``.
"""
