"""The canonical data model: immutable typed records every layer above speaks.

Leaf package: imports the standard library and msgspec only. It must not do I/O.
"""
