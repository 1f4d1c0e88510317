"""Detection: detectors turn canonical events into alerts.

``engine`` holds the :class:`~provarmor.detection.engine.Detector` seam; ``sigma`` runs Sigma
rules (and Sigma correlations) directly on canonical events. Detection imports the model
(and later the graph) only: never storage, outputs or the pipeline.
"""
