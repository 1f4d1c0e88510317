"""Putting an analysis together: which detectors, which model, which incident rule.

One :class:`AnalysisPlan` says what to run; :func:`build_analysis` makes a fresh pipeline
from it (detectors keep per-stream state, so every stream gets its own). The CLI, the
evaluation protocol and the benchmarks all build their pipelines here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from provarmor.detection.anomaly.detector import AnomalyDetector
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import AnomalySettings
from provarmor.detection.context import ContextDetector
from provarmor.detection.engine import Detector
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.sigma.loader import load_rule_paths
from provarmor.detection.sigma.ruleset import RuleSet, build_ruleset
from provarmor.detection.suppress import Recall, SuppressingDetector, Suppression
from provarmor.graph.builder import BuilderLimits
from provarmor.graph.settings import GraphSettings
from provarmor.graph.store import GraphStore, MemoryGraphStore, PersistentGraphStore
from provarmor.investigation.incidents import IncidentEngine, IncidentRule
from provarmor.investigation.settings import InvestigationSettings
from provarmor.model.attack import load_attack_table
from provarmor.model.errors import ConfigError
from provarmor.pipeline.analysis import Analysis


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisPlan:
    rules: tuple[Path, ...] = ()
    """Sigma rule files or directories; empty: no rule detector (unless ``ruleset``)."""
    ruleset: RuleSet | None = None
    """Rules compiled once (:func:`compile_rules`) and shared by many pipelines; used
    instead of ``rules`` when given."""
    model: AnomalyModel | None = None
    """The anomaly model; ``None``: no anomaly detector."""
    incident_rule: IncidentRule | None = None
    """When a campaign becomes an incident; ``None``: the model's calibrated rule if it has
    one, else the default rule."""
    suppressions: tuple[Suppression, ...] = ()
    """Exceptions; they filter the alerts of the rules and of the anomaly model."""
    replaceable_suppressions: bool = False
    """Filter every detector even without suppressions, so that the caller can swap them in
    later (:meth:`SuppressingDetector.replace_suppressions`: the manager's analyst
    feedback)."""
    lineage_recall: Recall | None = None
    """Where the suppression filter looks up processes it has not seen (a persistent graph:
    the manager's host graphs outlive its restarts)."""
    dedup_window_ns: int = 0
    """Merge repeated rule hits within this window before they go on. 0 (the default for
    live and evaluation) hands every hit over at once; a window holds the first one back."""
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
    investigation: InvestigationSettings = field(default_factory=InvestigationSettings)
    graph: GraphSettings = field(default_factory=GraphSettings)
    context: bool = True
    """Judge each signal by its process's lineage (:mod:`provarmor.detection.context`);
    off only to measure what context changes."""

    def effective_rule(self) -> IncidentRule:
        if self.incident_rule is not None:
            return self.incident_rule
        if self.model is not None:
            stored = self.model.metadata.get("incident_rule")
            if isinstance(stored, dict):
                return msgspec.convert(stored, IncidentRule)
        return IncidentRule()


def compile_rules(paths: Sequence[Path]) -> RuleSet:
    """Parse and compile Sigma rules once (rules that cannot run are left out, as ever)."""
    missing = [path for path in paths if not path.exists()]
    if missing:
        raise ConfigError(f"no rules at {missing[0]}")
    return build_ruleset(load_rule_paths(paths), attack=load_attack_table())[0]


def build_detectors(plan: AnalysisPlan, *, anomaly: Detector | None = None) -> list[Detector]:
    """The plan's detectors, each behind the exception filter when the plan filters;
    ``anomaly``: a caller-kept anomaly detector used instead of one built from the plan's
    model (see :func:`build_analysis`)."""
    detectors: list[Detector] = []
    ruleset = plan.ruleset
    if ruleset is None and plan.rules:
        ruleset = compile_rules(plan.rules)
    filtered = bool(plan.suppressions) or plan.replaceable_suppressions
    if ruleset is not None:
        sigma: Detector = SigmaDetector(ruleset)
        if filtered or plan.dedup_window_ns:
            sigma = SuppressingDetector(
                sigma,
                suppressions=plan.suppressions,
                window_ns=plan.dedup_window_ns,
                recall=plan.lineage_recall,
            )
        detectors.append(sigma)
    if anomaly is None and plan.model is not None:
        anomaly = AnomalyDetector(plan.model, settings=plan.anomaly)
    if anomaly is not None:
        if filtered:
            anomaly = SuppressingDetector(
                anomaly, suppressions=plan.suppressions, recall=plan.lineage_recall
            )
        detectors.append(anomaly)
    return detectors


def build_analysis(
    plan: AnalysisPlan,
    *,
    store: GraphStore | PersistentGraphStore | None = None,
    anomaly: Detector | None = None,
) -> Analysis:
    """A fresh pipeline (in-memory graph unless ``store`` is given; a persistent store's edge
    ids are continued). ``anomaly``: an anomaly detector the caller keeps and runs after the
    plan's detectors (a learning host's, whose state outlives any one pipeline)."""
    graph_store = store if store is not None else MemoryGraphStore()
    next_edge_id = (
        graph_store.next_edge_id() if isinstance(graph_store, PersistentGraphStore) else 1
    )
    engine = IncidentEngine(graph_store, settings=plan.investigation, rule=plan.effective_rule())
    detectors = build_detectors(plan, anomaly=anomaly)
    if plan.context and detectors:
        detectors = [ContextDetector(detectors)]
    return Analysis(
        graph_store,
        detectors=detectors,
        engine=engine,
        limits=BuilderLimits(
            max_nodes=plan.graph.max_nodes, max_open_edges=plan.graph.max_open_edges
        ),
        index_events=plan.graph.index_events,
        next_edge_id=next_edge_id,
    )


def describe_rule(rule: IncidentRule) -> str:
    if rule.min_score > 0:
        return f"incident when a campaign scores >= {rule.min_score:.2f}, {rule.source}"
    return "default incident rule: a high or critical signal, or a medium one over 2+ tactics"
