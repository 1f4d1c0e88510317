"""Composition: wires sources, the graph builder, detectors and stores into runs."""
