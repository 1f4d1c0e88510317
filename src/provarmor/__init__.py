"""ProvArmor: AI + provenance-analysis endpoint intrusion detection and forensics for Linux.

Data flows sensor -> canonical events -> provenance graph -> detection -> incidents -> store.
See docs/architecture.md for the layers and where each kind of code lives.
"""

__version__ = "0.1.0"
