"""The provenance graph: events in, nodes and information-flow edges out, and the
time-respecting causality queries over them.

Must not do I/O: persistence is the storage layer's job, behind :class:`GraphStore`.
"""
