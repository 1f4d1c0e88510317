"""The manager's detection kit: rules compiled from settings, the rule summaries the API
lists (silent correlation members left out), the optional anomaly model, and per-host
pipelines that continue a host's graph store, filter their alerts by analysts' exceptions
and recall the lineage of processes from it."""

import gzip
from pathlib import Path

import msgspec
import pytest

from provarmor.detection.anomaly.settings import AnomalySettings
from provarmor.detection.context import ContextDetector
from provarmor.detection.suppress import LineageTable, SuppressingDetector
from provarmor.investigation.settings import IncidentSettings, InvestigationSettings, RuleChoice
from provarmor.manager.detectors import (
    RuleSummary,
    build_host_analysis,
    load_detection,
    recall_from,
)
from provarmor.manager.settings import ManagerSettings
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event
from provarmor.pipeline.config import AnalysisConfig
from provarmor.storage.sqlite_graph import SqliteGraphStore

DATA = Path(__file__).parents[2] / "data"
SIGMAHQ = DATA / "sigma" / "sigmahq"
LAB = DATA / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"


def _lab_events() -> list[Event]:
    decoder = msgspec.json.Decoder(Event)
    return [decoder.decode(line) for line in gzip.decompress(LAB.read_bytes()).splitlines()]


def test_bundled_rules_are_summarised_without_silent_members(kit):
    summaries = kit.rules()
    keys = [summary.key for summary in summaries]
    assert len(keys) == len(set(keys))
    assert not set(keys) & kit.ruleset.silent
    assert kit.ruleset.silent, "the bundled pack has correlation members that stay silent"
    assert len(summaries) == (
        len(kit.ruleset.rules) + len(kit.ruleset.correlations) - len(kit.ruleset.silent)
    )
    correlations = {spec.info.key for spec in kit.ruleset.correlations}
    assert correlations
    assert {s.key for s in summaries if s.correlation} == correlations
    assert kit.model is None


def test_configured_rules_replace_the_bundled_pack():
    kit = load_detection(ManagerSettings(rules=(SIGMAHQ,)))
    summaries = {summary.key: summary for summary in kit.rules()}
    assert len(summaries) == len(kit.ruleset.rules) + len(kit.ruleset.correlations)
    assert all(Path(s.path).parent == SIGMAHQ for s in summaries.values())
    assert summaries["ddb26b76-4447-4807-871f-1b035b2bfa5d"] == RuleSummary(
        key="ddb26b76-4447-4807-871f-1b035b2bfa5d",
        title="Persistence Via Sudoers.d Files",
        level="medium",
        techniques=("T1548.003",),
        tactics=("Privilege Escalation", "Persistence"),
        path=str(SIGMAHQ / "file_event_lnx_persistence_sudoers_files.yml"),
    )


def test_model_is_loaded_when_configured():
    kit = load_detection(ManagerSettings(rules=(SIGMAHQ,), model=DATA / "anomaly/model-v2.bundle"))
    assert kit.model is not None


def test_unsupported_model_is_a_config_error():
    settings = ManagerSettings(rules=(SIGMAHQ,), model=DATA / "anomaly/model-v1.bundle")
    with pytest.raises(ConfigError, match="format 1 is not supported"):
        load_detection(settings)


def test_host_analysis_alerts_and_continues_the_hosts_edge_ids(kit, tmp_path):
    events = _lab_events()
    half = len(events) // 2
    store = SqliteGraphStore(tmp_path / "host.db")
    first = build_host_analysis(kit, store=store).collect(events[:half])
    edges_after_first = store.next_edge_id()
    assert edges_after_first > 1
    store.close()
    reopened = SqliteGraphStore(tmp_path / "host.db")
    assert reopened.next_edge_id() == edges_after_first
    second = build_host_analysis(kit, store=reopened).collect(events[half:])
    assert reopened.next_edge_id() > edges_after_first
    reopened.close()
    assert first.alerts or second.alerts, "the nodlink attack raises alerts"
    assert first.incidents or second.incidents


def test_host_pipeline_filters_and_recalls_lineage_from_the_host_graph(kit, tmp_path):
    store = SqliteGraphStore(tmp_path / "host.db")
    try:
        analysis = build_host_analysis(kit, store=store)
        analysis.feed(_lab_events())
        (context,) = analysis.detectors  # lineage context around the filtered rules
        assert isinstance(context, ContextDetector)
        (sigma,) = context.detectors
        assert isinstance(sigma, SuppressingDetector) and sigma.suppressions == ()
        recall = recall_from(store)
        # the dropped program's creator is the shell the web app's python started
        dropped = recall("nUXt0S1qsVBsEXaf")
        assert dropped is not None
        assert dropped.executable == "/tmp/.portal-6ww3/irqbalance-d4"
        assert dropped.parent and dropped.user_id == "999" and dropped.seen
        assert recall(dropped.parent).executable == "/bin/sh"
        assert recall("no-such-process") is None
        # a fresh table (a restarted manager) walks the lineage through the graph
        table = LineageTable(recall=recall)
        assert table.ancestors("nUXt0S1qsVBsEXaf") == [
            "/bin/sh",
            "/root/.pyenv/versions/3.11.7/bin/python3.11",
        ]
        assert table.recalled == 3
    finally:
        store.close()


def test_the_configured_analysis_settings_reach_every_hosts_pipeline(tmp_path):
    config = AnalysisConfig(
        incident=IncidentSettings(rule=RuleChoice.SCORE, min_score=1e6),
        investigation=InvestigationSettings(max_incident_nodes=7),
    )
    kit = load_detection(ManagerSettings(), config)
    store = SqliteGraphStore(tmp_path / "host.db")
    try:
        analysis = build_host_analysis(kit, store=store)
        assert analysis.engine.rule.min_score == 1e6
        assert analysis.engine.settings.max_incident_nodes == 7
        result = analysis.collect(_lab_events())
    finally:
        store.close()
    assert result.alerts  # the attack still raises its alerts
    assert not result.incidents()  # none of its campaigns reaches the configured score


def test_the_anomaly_sections_model_is_the_managers_when_it_names_none():
    config = AnalysisConfig(anomaly=AnomalySettings(model=str(DATA / "anomaly/model-v2.bundle")))
    kit = load_detection(ManagerSettings(rules=(SIGMAHQ,)), config)
    assert kit.model is not None
    assert kit.learning is None  # an operator's model: hosts do not learn
