"""What the manager runs on uploads: the Sigma rule set (compiled once, shared by every
host's analysis), the operator's anomaly model or else learning mode (each host learns its
own model: :mod:`provarmor.pipeline.learning`), and the per-host pipeline built from them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.detection.engine import Detector
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.detection.sigma.ruleset import RuleSet
from provarmor.detection.suppress import ProcessFacts, Recall
from provarmor.graph.read_cache import ReadCachedStore
from provarmor.graph.records import NodeKind
from provarmor.graph.store import PersistentGraphStore
from provarmor.manager.settings import ManagerSettings
from provarmor.pipeline.analysis import Analysis
from provarmor.pipeline.assembly import (
    build_analysis,
    compile_rules,
    plan_from_config,
)
from provarmor.pipeline.checkpoint import Shared
from provarmor.pipeline.config import AnalysisConfig
from provarmor.pipeline.learning import HostLearning


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSummary:
    key: str
    title: str
    level: str
    techniques: tuple[str, ...]
    tactics: tuple[str, ...]
    path: str
    correlation: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectionKit:
    ruleset: RuleSet
    model: AnomalyModel | None = None
    """The operator's model (``manager.model``), run for every host."""
    learning: LearningSettings | None = None
    """Without an operator's model: each host learns its own (``None``: learning is off)."""
    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    """The configured analysis settings every host's pipeline is built with."""

    def rules(self) -> list[RuleSummary]:
        infos = [(rule.info, False) for rule in self.ruleset.rules]
        infos += [(spec.info, True) for spec in self.ruleset.correlations]
        return [
            RuleSummary(
                key=info.key,
                title=info.title,
                level=info.level,
                techniques=tuple(ref.id for ref in info.techniques),
                tactics=tuple(ref.name for ref in info.tactics),
                path=info.path,
                correlation=correlation,
            )
            for info, correlation in infos
            if info.key not in self.ruleset.silent
        ]


def load_detection(settings: ManagerSettings, config: AnalysisConfig | None = None) -> DetectionKit:
    """Compile the configured rules (default: the bundled pack) and load the operator's
    model (``manager.model``, else ``anomaly.model``); without one, hosts learn their own
    (unless ``learning.enabled`` is off). ``config``: the analysis settings (default: the
    defaults)."""
    config = config if config is not None else AnalysisConfig()
    paths = list(settings.rules) or [bundled_rules()]
    ruleset = compile_rules(paths)
    path = settings.model or (Path(config.anomaly.model) if config.anomaly.model else None)
    model = load_bundle(path) if path is not None else None
    learning = config.learning
    return DetectionKit(
        ruleset=ruleset,
        model=model,
        learning=learning if model is None and learning.enabled else None,
        config=config,
    )


def build_host_analysis(
    kit: DetectionKit, *, store: PersistentGraphStore, learning: HostLearning | None = None
) -> Analysis:
    """A fresh pipeline for one host over its graph store, continuing its edge ids, with the
    host's learning-mode detector when it learns; its detectors take analysts' exceptions
    while it runs (the ingestor swaps them in) and judge processes started before a restart
    of the manager by what the host's graph knows."""
    return host_analysis_parts(kit, store=store, learning=learning)[0]


def host_analysis_parts(
    kit: DetectionKit,
    *,
    store: PersistentGraphStore,
    learning: HostLearning | None = None,
    write_behind: bool = False,
) -> tuple[Analysis, Shared]:
    """:func:`build_host_analysis`, and the parts it shares with the kit and the host (what
    a checkpoint of it refers to instead of holding). ``write_behind``: the analysis's graph
    writes wait for its store's :meth:`~provarmor.graph.read_cache.ReadCachedStore.flush`."""
    graph = ReadCachedStore(store, write_behind=write_behind)
    plan = plan_from_config(
        kit.config,
        ruleset=kit.ruleset,
        model=kit.model,
        replaceable_suppressions=True,
        lineage_recall=recall_from(graph),
    )
    kept: dict[str, Detector] = {"anomaly": learning.detector} if learning is not None else {}
    shared = Shared(store=store, ruleset=kit.ruleset, model=kit.model, kept=kept)
    return build_analysis(plan, store=graph, kept=kept), shared


def kit_digest(kit: DetectionKit) -> str:
    """A digest of what a host's analysis is built from (rules, model, settings): a checkpoint
    is restored only into an analysis built from the same."""
    digest = hashlib.sha256()
    for rule in kit.rules():
        digest.update(msgspec.json.encode(rule, order="sorted", enc_hook=str) + b"\n")
    digest.update(b"silent:" + ",".join(sorted(kit.ruleset.silent)).encode() + b"\n")
    if kit.model is not None:
        digest.update(
            b"model:"
            + msgspec.json.encode(kit.model.metadata, order="sorted", enc_hook=str)
            + b"\n"
        )
    digest.update(
        b"learning:" + msgspec.json.encode(kit.learning, order="sorted", enc_hook=str) + b"\n"
    )
    digest.update(b"config:" + msgspec.json.encode(kit.config, order="sorted", enc_hook=str))
    return digest.hexdigest()[:32]


def recall_from(store: PersistentGraphStore | ReadCachedStore) -> Recall:
    """A process's executable, uid and creator as the host's provenance graph holds them."""
    return GraphRecall(store)


@dataclass(frozen=True, slots=True)
class GraphRecall:
    """:func:`recall_from`'s lookup (an object of its own type; a checkpoint holds it with
    the analysis's store, whose writes may still be pending)."""

    store: PersistentGraphStore | ReadCachedStore

    def __call__(self, entity: str) -> ProcessFacts | None:
        node = self.store.node(entity)
        if node is None or node.kind is not NodeKind.PROCESS:
            return None
        return ProcessFacts(
            executable=node.executable,
            user_id=node.user,
            user_name="root" if node.user == "0" else "",
            parent=node.parent,
            seen=True,
        )
