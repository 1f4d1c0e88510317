"""Observability: the metrics registry and logging conventions. Leaf package."""
