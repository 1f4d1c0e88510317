"""Putting an analysis together: which detectors, which model, which incident rule.

The configuration's analysis sections (:class:`AnalysisConfig`) and what a caller adds (rules,
model, exceptions) make one :class:`AnalysisPlan` (:func:`plan_from_config`); every command,
the manager and the evaluation build theirs there. :func:`build_analysis` makes a fresh
pipeline from a plan (detectors keep per-stream state, so every stream gets its own), with
the detectors of the :data:`DETECTORS` registry, in its order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provarmor.detection.anomaly.bundle import load_bundle
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
from provarmor.graph.read_cache import ReadCachedStore
from provarmor.graph.settings import GraphSettings
from provarmor.graph.store import GraphStore, MemoryGraphStore, PersistentGraphStore
from provarmor.investigation.incidents import (
    IncidentEngine,
    IncidentRule,
    configured_rule,
    parse_rule,
)
from provarmor.investigation.settings import IncidentSettings, InvestigationSettings
from provarmor.model.attack import load_attack_table
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import seconds_to_ns
from provarmor.pipeline.analysis import Analysis
from provarmor.pipeline.config import AnalysisConfig


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
    """When a campaign becomes an incident (a rule the caller calibrated); ``None``: the one
    ``incident`` chooses (by default the model's calibrated rule if it has one, else the
    default rule)."""
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
    incident: IncidentSettings = field(default_factory=IncidentSettings)
    graph: GraphSettings = field(default_factory=GraphSettings)
    context: bool = True
    """Judge each signal by its process's lineage (:mod:`provarmor.detection.context`);
    off only to measure what context changes."""

    def effective_rule(self) -> IncidentRule:
        if self.incident_rule is not None:
            return self.incident_rule
        calibrated = None
        if self.model is not None:
            stored = self.model.metadata.get("incident_rule")
            if isinstance(stored, dict):
                calibrated = parse_rule(stored, location="model bundle metadata incident_rule")
        return configured_rule(self.incident, calibrated=calibrated)


def plan_from_config(  # noqa: PLR0913
    config: AnalysisConfig,
    *,
    rules: Sequence[Path] = (),
    ruleset: RuleSet | None = None,
    model: AnomalyModel | None = None,
    suppressions: Sequence[Suppression] = (),
    replaceable_suppressions: bool = False,
    lineage_recall: Recall | None = None,
    merge_repeats: bool = False,
) -> AnalysisPlan:
    """The plan of every analysis: the configuration's settings, with what the caller adds.
    ``model``: the caller's; ``None``: the bundle ``anomaly.model`` names, if any.
    ``merge_repeats``: hold repeated rule hits for ``detection.dedup_window_seconds`` (the
    stream of alerts a person reads); off, each hit goes on at once."""
    if model is None and config.anomaly.model:
        model = load_bundle(Path(config.anomaly.model))
    window = config.detection.dedup_window_seconds if merge_repeats else 0.0
    return AnalysisPlan(
        rules=tuple(rules),
        ruleset=ruleset,
        model=model,
        suppressions=tuple(suppressions),
        replaceable_suppressions=replaceable_suppressions,
        lineage_recall=lineage_recall,
        dedup_window_ns=seconds_to_ns(window, what="detection.dedup_window_seconds"),
        anomaly=config.anomaly,
        investigation=config.investigation,
        incident=config.incident,
        graph=config.graph,
    )


def compile_rules(paths: Sequence[Path]) -> RuleSet:
    """Parse and compile Sigma rules once (rules that cannot run are left out, as ever)."""
    missing = [path for path in paths if not path.exists()]
    if missing:
        raise ConfigError(f"no rules at {missing[0]}")
    return build_ruleset(load_rule_paths(paths), attack=load_attack_table())[0]


@dataclass(frozen=True, slots=True)
class DetectorKind:
    """One line of :data:`DETECTORS`."""

    build: Callable[[AnalysisPlan], Detector | None]
    """The plan's detector of this kind (``None``: the plan runs none)."""
    merges_repeats: bool = False
    """Repeated hits are merged within the plan's ``dedup_window_ns``."""


def _sigma(plan: AnalysisPlan) -> Detector | None:
    ruleset = plan.ruleset
    if ruleset is None and plan.rules:
        ruleset = compile_rules(plan.rules)
    return SigmaDetector(ruleset) if ruleset is not None else None


def _anomaly(plan: AnalysisPlan) -> Detector | None:
    return AnomalyDetector(plan.model, settings=plan.anomaly) if plan.model is not None else None


DETECTORS: dict[str, DetectorKind] = {
    "sigma": DetectorKind(_sigma, merges_repeats=True),
    "anomaly": DetectorKind(_anomaly),
}
"""Every detector an analysis can run, in the order they see each event."""


def build_detectors(
    plan: AnalysisPlan, *, kept: Mapping[str, Detector] | None = None
) -> list[Detector]:
    """The plan's detectors, each behind the exception filter when the plan filters;
    ``kept``: detectors the caller keeps, by registry name, used instead of building that
    kind from the plan (see :func:`build_analysis`)."""
    kept = kept or {}
    unknown = set(kept) - set(DETECTORS)
    if unknown:
        raise ValueError(f"no detector kind {sorted(unknown)}; known: {', '.join(DETECTORS)}")
    detectors: list[Detector] = []
    filtered = bool(plan.suppressions) or plan.replaceable_suppressions
    for name, kind in DETECTORS.items():
        detector = kept[name] if name in kept else kind.build(plan)
        if detector is None:
            continue
        window = plan.dedup_window_ns if kind.merges_repeats else 0
        if filtered or window:
            detector = SuppressingDetector(
                detector,
                suppressions=plan.suppressions,
                window_ns=window,
                recall=plan.lineage_recall,
            )
        detectors.append(detector)
    return detectors


def build_analysis(
    plan: AnalysisPlan,
    *,
    store: GraphStore | PersistentGraphStore | ReadCachedStore | None = None,
    kept: Mapping[str, Detector] | None = None,
) -> Analysis:
    """A fresh pipeline (in-memory graph unless ``store`` is given; a persistent store's edge
    ids are continued). ``kept``: detectors the caller keeps, by registry name, instead of
    building them from the plan (a learning host's anomaly detector, whose state outlives any
    one pipeline). The analysis reads and writes a persistent store through a
    :class:`ReadCachedStore` (its incident stories read the same nodes again and again), so
    every write to ``store`` must go through the analysis while it runs (or give the
    :class:`ReadCachedStore` itself, e.g. one that writes behind)."""
    graph_store: GraphStore = MemoryGraphStore() if store is None else store
    next_edge_id = 1
    if isinstance(graph_store, ReadCachedStore):
        next_edge_id = graph_store.next_edge_id()
    elif isinstance(graph_store, PersistentGraphStore):
        next_edge_id = graph_store.next_edge_id()
        graph_store = ReadCachedStore(graph_store)
    engine = IncidentEngine(graph_store, settings=plan.investigation, rule=plan.effective_rule())
    detectors = build_detectors(plan, kept=kept)
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
    return (
        "default incident rule: a high or critical signal, or a medium one with distinct "
        "behaviours over 2+ tactics (lowered signals left out)"
    )
