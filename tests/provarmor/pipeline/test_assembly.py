"""Tests of pipeline assembly: which detectors a plan builds, which incident rule it uses, and
how a pipeline on a persistent store continues its edge ids."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.anomaly.detector import AnomalyDetector
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import AnomalySettings
from provarmor.detection.context import ContextDetector
from provarmor.detection.settings import DetectionSettings
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.detection.suppress import SuppressingDetector, Suppression
from provarmor.graph.settings import GraphSettings
from provarmor.investigation.incidents import IncidentRule
from provarmor.investigation.settings import IncidentSettings, InvestigationSettings, RuleChoice
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event
from provarmor.pipeline.assembly import (
    DETECTORS,
    AnalysisPlan,
    build_analysis,
    build_detectors,
    compile_rules,
    describe_rule,
    plan_from_config,
)
from provarmor.pipeline.config import AnalysisConfig
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson
from provarmor.storage.sqlite_graph import SqliteGraphStore

DATA = Path(__file__).resolve().parents[2] / "data"
MODEL = DATA / "anomaly" / "model-v2.bundle"
ATTACK = DATA / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"


@functools.cache
def _model() -> AnomalyModel:
    return load_bundle(MODEL)


@functools.cache
def _attack_events() -> tuple[Event, ...]:
    report = IngestReport(source=str(ATTACK))
    return tuple(read_ndjson(ATTACK, report=report, host=HostContext()))


def test_a_plan_with_rules_only_builds_one_sigma_detector() -> None:
    (detector,) = build_detectors(AnalysisPlan(rules=(bundled_rules(),)))
    assert isinstance(detector, SigmaDetector)


def test_a_plan_with_a_model_only_builds_one_anomaly_detector() -> None:
    model = _model()
    (detector,) = build_detectors(AnalysisPlan(model=model))
    assert isinstance(detector, AnomalyDetector)
    assert detector.model is model


def test_a_plan_with_both_builds_the_rules_first_then_the_model() -> None:
    detectors = build_detectors(AnalysisPlan(rules=(bundled_rules(),), model=_model()))
    assert [type(d) for d in detectors] == [SigmaDetector, AnomalyDetector]


def test_an_empty_plan_builds_no_detector() -> None:
    assert build_detectors(AnalysisPlan()) == []


def test_a_compiled_ruleset_is_used_instead_of_rule_paths() -> None:
    ruleset = compile_rules([bundled_rules()])
    assert len(ruleset.rules) > 10
    plan = AnalysisPlan(ruleset=ruleset, rules=(Path("/nonexistent/rules"),))
    (detector,) = build_detectors(plan)  # the missing path is never read
    assert isinstance(detector, SigmaDetector)


def test_suppressions_or_a_dedup_window_wrap_the_rule_detector() -> None:
    ruleset = compile_rules([bundled_rules()])
    (windowed,) = build_detectors(AnalysisPlan(ruleset=ruleset, dedup_window_ns=10**9))
    assert isinstance(windowed, SuppressingDetector)
    quiet = Suppression(name="quiet", rules=("some-rule",))
    (suppressed,) = build_detectors(AnalysisPlan(ruleset=ruleset, suppressions=(quiet,)))
    assert isinstance(suppressed, SuppressingDetector)


def test_compile_rules_refuses_a_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-rules"
    with pytest.raises(ConfigError, match=r"no rules at .*no-such-rules"):
        compile_rules([bundled_rules(), missing])
    with pytest.raises(ConfigError):
        build_detectors(AnalysisPlan(rules=(missing,)))


def test_an_explicit_incident_rule_wins_over_the_models_stored_one() -> None:
    stored = {"min_score": 2.5, "source": "calibrated on 7 validation campaigns"}
    model = dataclasses.replace(_model(), metadata={**_model().metadata, "incident_rule": stored})
    explicit = IncidentRule(min_score=9.0, source="operator")
    assert AnalysisPlan(model=model, incident_rule=explicit).effective_rule() == explicit


def test_the_models_stored_incident_rule_is_used_when_none_is_given() -> None:
    stored = {"min_score": 2.5, "source": "calibrated on 7 validation campaigns"}
    model = dataclasses.replace(_model(), metadata={**_model().metadata, "incident_rule": stored})
    rule = AnalysisPlan(model=model).effective_rule()
    assert rule == IncidentRule(min_score=2.5, source="calibrated on 7 validation campaigns")
    assert build_analysis(AnalysisPlan(model=model)).engine.rule == rule


def test_the_default_rule_applies_without_a_stored_one() -> None:
    assert "incident_rule" not in _model().metadata  # the fixture model stores none
    assert AnalysisPlan(model=_model()).effective_rule() == IncidentRule()
    assert AnalysisPlan().effective_rule() == IncidentRule()
    malformed = dataclasses.replace(_model(), metadata={"incident_rule": "high"})
    assert AnalysisPlan(model=malformed).effective_rule() == IncidentRule()


def test_describe_rule_names_the_threshold_or_the_default() -> None:
    assert describe_rule(IncidentRule()).startswith("default incident rule")
    text = describe_rule(IncidentRule(min_score=1.234, source="calibrated"))
    assert text == "incident when a campaign scores >= 1.23, calibrated"


def test_a_pipeline_on_a_persistent_store_continues_its_edge_ids(tmp_path: Path) -> None:
    events = _attack_events()
    half = len(events) // 2
    store = SqliteGraphStore(tmp_path / "graph.db")
    try:
        first = build_analysis(AnalysisPlan(), store=store)
        assert first.builder.next_edge_id == 1
        list(first.run(events[:half]))
        stored = [edge.id for edge in store.iter_edges()]
        assert stored
        second = build_analysis(AnalysisPlan(), store=store)
        assert second.builder.next_edge_id == max(stored) + 1
        list(second.run(events[half:]))
        ids = [edge.id for edge in store.iter_edges()]
        assert len(ids) == len(set(ids)) > len(stored)
    finally:
        store.close()


def test_an_in_memory_pipeline_starts_edge_ids_at_one() -> None:
    analysis = build_analysis(AnalysisPlan(rules=(bundled_rules(),), model=_model()))
    assert analysis.builder.next_edge_id == 1
    (context,) = analysis.detectors  # every signal is judged by its lineage (default)
    assert isinstance(context, ContextDetector)
    assert [type(d) for d in context.detectors] == [SigmaDetector, AnomalyDetector]
    plain = build_analysis(AnalysisPlan(rules=(bundled_rules(),), model=_model(), context=False))
    assert [type(d) for d in plain.detectors] == [SigmaDetector, AnomalyDetector]


def test_replaceable_suppressions_filter_the_rules_and_the_model() -> None:
    plan = AnalysisPlan(rules=(bundled_rules(),), model=_model(), replaceable_suppressions=True)
    sigma, anomaly = build_detectors(plan)
    assert isinstance(sigma, SuppressingDetector) and isinstance(anomaly, SuppressingDetector)
    assert sigma.suppressions == anomaly.suppressions == ()
    assert (sigma.name, anomaly.name) == ("sigma", "anomaly")


def test_detectors_come_from_the_registry_in_its_order() -> None:
    assert list(DETECTORS) == ["sigma", "anomaly"]
    plan = AnalysisPlan(rules=(bundled_rules(),), model=_model())
    assert [type(d) for d in build_detectors(plan)] == [SigmaDetector, AnomalyDetector]
    kept = AnomalyDetector(_model())
    assert build_detectors(plan, kept={"anomaly": kept})[1] is kept
    with pytest.raises(ValueError, match="no detector kind"):
        build_detectors(plan, kept={"yara": kept})


def test_a_plan_from_the_configuration_carries_every_analysis_setting(tmp_path: Path) -> None:
    config = AnalysisConfig(
        anomaly=AnomalySettings(model=str(MODEL), batch_size=8),
        detection=DetectionSettings(dedup_window_seconds=2.5),
        graph=GraphSettings(max_nodes=1234),
        incident=IncidentSettings(rule=RuleChoice.SCORE, min_score=4.0),
        investigation=InvestigationSettings(max_incident_nodes=9),
    )
    plan = plan_from_config(config, rules=(bundled_rules(),))
    assert plan.model is not None  # loaded from anomaly.model
    assert (plan.anomaly, plan.graph, plan.investigation) == (
        config.anomaly,
        config.graph,
        config.investigation,
    )
    assert plan.dedup_window_ns == 0  # only a caller that merges repeats holds them back
    assert plan_from_config(config, merge_repeats=True).dedup_window_ns == 2_500_000_000
    analysis = build_analysis(plan)
    assert analysis.engine.rule.min_score == 4.0
    assert analysis.engine.settings.max_incident_nodes == 9
    assert analysis.builder.limits.max_nodes == 1234
    (context,) = analysis.detectors
    assert isinstance(context, ContextDetector)
    sigma, anomaly = context.detectors
    assert isinstance(sigma, SigmaDetector)
    assert isinstance(anomaly, AnomalyDetector) and anomaly.settings.batch_size == 8
    given = _model()
    assert plan_from_config(config, model=given).model is given


def test_the_configured_incident_rule_can_set_the_models_calibrated_one_aside() -> None:
    stored = {"min_score": 2.5, "source": "calibrated on 7 validation campaigns"}
    model = dataclasses.replace(_model(), metadata={**_model().metadata, "incident_rule": stored})
    auto = plan_from_config(AnalysisConfig(), model=model)
    assert auto.effective_rule().min_score == 2.5
    default = AnalysisConfig(incident=IncidentSettings(rule=RuleChoice.DEFAULT))
    assert plan_from_config(default, model=model).effective_rule() == IncidentRule()
    newer = dataclasses.replace(model, metadata={"incident_rule": {**stored, "version": 9}})
    with pytest.raises(ConfigError, match="incident rule version 9 is not supported"):
        AnalysisPlan(model=newer).effective_rule()
