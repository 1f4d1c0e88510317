"""Putting an analysis together: which detectors, which model, which incident rule.

One :class:`AnalysisPlan` says what to run; :func:`build_analysis` makes a fresh pipeline
from it (detectors keep per-stream state, so every stream gets its own). The CLI, the
evaluation protocol and the benchmarks all build their pipelines here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from provarmor.detection.anomaly.detector import AnomalyDetector
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import AnomalySettings
from provarmor.detection.engine import Detector
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.suppress import SuppressingDetector, Suppression
from provarmor.graph.builder import BuilderLimits
from provarmor.graph.settings import GraphSettings
from provarmor.graph.store import GraphStore, MemoryGraphStore
from provarmor.investigation.incidents import IncidentEngine, IncidentRule
from provarmor.investigation.settings import InvestigationSettings
from provarmor.pipeline.analysis import Analysis


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisPlan:
    rules: tuple[Path, ...] = ()
    """Sigma rule files or directories; empty: no rule detector."""
    model: AnomalyModel | None = None
    """The anomaly model; ``None``: no anomaly detector."""
    incident_rule: IncidentRule | None = None
    """When a campaign becomes an incident; ``None``: the model's calibrated rule if it has
    one, else the default rule."""
    suppressions: tuple[Suppression, ...] = ()
    dedup_window_ns: int = 0
    """Merge repeated rule hits within this window before they go on. 0 (the default for
    live and evaluation) hands every hit over at once; a window holds the first one back."""
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
    investigation: InvestigationSettings = field(default_factory=InvestigationSettings)
    graph: GraphSettings = field(default_factory=GraphSettings)

    def effective_rule(self) -> IncidentRule:
        if self.incident_rule is not None:
            return self.incident_rule
        if self.model is not None:
            stored = self.model.metadata.get("incident_rule")
            if isinstance(stored, dict):
                return msgspec.convert(stored, IncidentRule)
        return IncidentRule()


def build_detectors(plan: AnalysisPlan) -> list[Detector]:
    detectors: list[Detector] = []
    if plan.rules:
        sigma: Detector = SigmaDetector.from_paths(list(plan.rules))[0]
        if plan.suppressions or plan.dedup_window_ns:
            sigma = SuppressingDetector(
                sigma, suppressions=plan.suppressions, window_ns=plan.dedup_window_ns
            )
        detectors.append(sigma)
    if plan.model is not None:
        detectors.append(AnomalyDetector(plan.model, settings=plan.anomaly))
    return detectors


def build_analysis(plan: AnalysisPlan, *, store: GraphStore | None = None) -> Analysis:
    """A fresh pipeline (in-memory graph unless ``store`` is given)."""
    graph_store = store if store is not None else MemoryGraphStore()
    engine = IncidentEngine(graph_store, settings=plan.investigation, rule=plan.effective_rule())
    return Analysis(
        graph_store,
        detectors=build_detectors(plan),
        engine=engine,
        limits=BuilderLimits(
            max_nodes=plan.graph.max_nodes, max_open_edges=plan.graph.max_open_edges
        ),
        index_events=plan.graph.index_events,
    )


def describe_rule(rule: IncidentRule) -> str:
    if rule.min_score > 0:
        return f"incident when a campaign scores >= {rule.min_score:.2f}, {rule.source}"
    return "default incident rule: a high or critical signal, or a medium one over 2+ tactics"
