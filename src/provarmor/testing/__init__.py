"""ProvArmor's shipped test kit: event factories, fake sources and in-memory stores.

Used by our own tests and by authors of sources, detectors and outputs. Nothing inside the
``provarmor`` package imports it.
"""
