"""Investigation: signals become campaigns (causally connected over the provenance graph),
campaigns become incidents with an attack story (root cause, attack graph, timeline,
ATT&CK techniques, summary).

Reads the graph through :class:`provarmor.graph.store.GraphStore` only; never does I/O.
"""
