from __future__ import annotations

import functools
import json
from pathlib import Path

import msgspec
import pytest

from provarmor.detection.engine import detect
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.graph.builder import GraphBuilder
from provarmor.graph.store import MemoryGraphStore
from provarmor.investigation.campaigns import Campaign
from provarmor.investigation.incidents import (
    RULE_VERSION,
    IncidentEngine,
    IncidentRule,
    calibration_floor,
    configured_rule,
    parse_rule,
    score_campaign,
)
from provarmor.investigation.settings import IncidentSettings, InvestigationSettings, RuleChoice
from provarmor.model.alert import Alert, SignalKind
from provarmor.model.errors import ConfigError
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "data" / "lab" / "nodlink-ubuntu-seed1"
RULES = ROOT / "src" / "provarmor" / "data" / "rules"
DATA = ROOT / "tests" / "data" / "investigation"


@functools.cache
def _fixture() -> tuple[MemoryGraphStore, tuple[Alert, ...]]:
    path = FIXTURE / "events.ndjson.gz"
    events = list(read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext()))
    builder = GraphBuilder()
    store = MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True))
    detector, _report = SigmaDetector.from_paths([RULES])
    return store, tuple(detect([detector], events))


def _labels() -> tuple[dict[str, object], set[str]]:
    labels = msgspec.json.decode((FIXTURE / "labels.json").read_bytes())
    entities = msgspec.json.decode((FIXTURE / "entity-labels.json").read_bytes())
    return labels, set(entities["processes"])


def test_nodlink_attack_is_one_incident_with_the_web_shell_as_root_cause() -> None:
    store, signals = _fixture()
    engine = IncidentEngine(store)
    engine.add_signals(signals)
    incidents = engine.incidents()
    assert len(incidents) == 1
    incident = incidents[0]
    labels, attacker = _labels()
    root = incident.node(incident.root_cause)
    assert root is not None
    roots = labels["attacker_roots"]
    assert isinstance(roots, list)
    earliest = min(roots, key=lambda r: r["start_ns"])
    assert (root.pid, root.executable) == (earliest["pid"], earliest["executable"])
    assert root.pid == 22418
    assert len(incident.nodes) <= 100
    processes = {n.id for n in incident.nodes if n.kind == "process"}
    precision = len(processes & attacker) / len(processes)
    recall = len(processes & attacker) / len(attacker)
    # measured: precision 1.0 (32 of 32), recall 1.0 (32 of 32)
    assert precision >= 0.9
    assert recall >= 0.95
    found = {t.id for t in incident.techniques}
    assert {"T1190", "T1059.004", "T1105", "T1222.002", "T1564.001", "T1140"} <= found
    assert {"T1033", "T1082", "T1016", "T1057", "T1049", "T1046"} <= found
    assert incident.severity == "critical"
    assert "10.213.0.223:8443" in incident.contacted_endpoints
    assert "/tmp/.portal-6ww3/irqbalance-d4" in incident.impacted_files
    assert incident.summary.startswith("Sh [22418]")
    stamps = [s.timestamp for s in incident.steps]
    assert stamps == sorted(stamps)


def test_incident_keeps_its_id_and_counts_versions_across_updates() -> None:
    store, signals = _fixture()
    engine = IncidentEngine(store)
    half = len(signals) // 2
    first = engine.add_signals(signals[:half])
    second = engine.add_signals(signals[half:])
    assert first and second
    assert second[-1].id == first[0].id
    assert second[-1].version == first[0].version + 1
    assert len(engine.incidents()) == 1


def test_campaigns_below_the_rule_are_listed_with_scores() -> None:
    store, signals = _fixture()
    engine = IncidentEngine(store, rule=IncidentRule(min_score=10_000.0, source="test"))
    assert engine.add_signals(signals) == []
    assert engine.incidents() == []
    campaigns = engine.campaigns()
    assert len(campaigns) == 1
    assert campaigns[0].score > 0
    assert campaigns[0].stages >= 3


def test_calibration_picks_the_smallest_threshold_within_the_target() -> None:
    scores = [1.0, 2.0, 5.0, 9.0, 30.0]
    rule = IncidentRule.calibrate(scores, target=1 / 24, hours=48.0)  # 2 allowed
    assert 5.0 < rule.min_score < 9.0 + 1e-6
    assert sum(s >= rule.min_score for s in scores) == 2
    strict = IncidentRule.calibrate(scores, target=0.0, hours=10.0)
    assert strict.min_score > 30.0
    assert "calibrated on 5 validation campaigns" in strict.source
    with pytest.raises(ValueError):
        IncidentRule.calibrate(scores, target=1.0, hours=0)


def test_calibration_never_goes_below_one_high_signal() -> None:
    # validation runs where nothing scored (every anomaly uncorroborated) allow any
    # threshold above 0; the floor keeps the rule from taking less than one high signal
    floor = calibration_floor(InvestigationSettings())
    assert floor == InvestigationSettings().weight_high
    quiet = IncidentRule.calibrate([0.0] * 8, target=1 / 24, hours=0.067, floor=floor)
    assert quiet.min_score == floor
    assert "floor 8 (one high signal)" in quiet.source
    noisy = IncidentRule.calibrate([0.0, 12.5], target=1 / 24, hours=0.067, floor=floor)
    assert 12.5 < noisy.min_score < 12.5 + 1e-6  # above the floor: the data decides
    assert "floor" not in noisy.source


def test_default_rule_needs_high_or_medium_over_two_tactics() -> None:
    from provarmor.investigation.incidents import CampaignScore

    def summary(levels: dict[str, int], tactics: tuple[str, ...]) -> CampaignScore:
        return CampaignScore(
            campaign_id="c1",
            host_id="h",
            score=1.0,
            levels=levels,
            breadth=len(tactics),
            stages=len(tactics),
            terminals=1,
            signals=1,
            first_ts=0,
            last_ts=0,
        )

    rule = IncidentRule()
    assert rule.admits(summary({"high": 1}, ("execution",)))
    assert not rule.admits(summary({"medium": 1}, ("execution",)))
    assert rule.admits(summary({"medium": 1, "low": 2}, ("execution", "discovery")))
    assert not rule.admits(summary({"low": 3, "informational": 5}, ("execution", "discovery")))


def test_a_rule_filed_under_two_tactics_counts_for_one_stage() -> None:
    from provarmor.investigation.incidents import distinct_reach

    # persistence (2) and privilege escalation (3) from one rule: one stage
    assert distinct_reach([{2, 3}]) == 1
    # a second rule at collection (6): two
    assert distinct_reach([{2, 3}, {6}]) == 2
    # two rules that may each be 2 or 3: both stages
    assert distinct_reach([{2, 3}, {2, 3}, {2}]) == 2
    assert distinct_reach([]) == 0
    assert distinct_reach([{"persistence", "privilege-escalation"}]) == 1


def test_story_is_rebuilt_when_the_attack_goes_on_without_signals() -> None:
    _, signals = _fixture()
    path = FIXTURE / "events.ndjson.gz"
    events = list(read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext()))
    ordered = sorted(signals, key=lambda s: s.last_timestamp)
    cut = ordered[0].last_timestamp
    builder, store = GraphBuilder(), MemoryGraphStore()
    for event in events:
        if event.timestamp <= cut:
            builder.add(event)
    store.apply(builder.drain(full=True))
    engine = IncidentEngine(store, rule=IncidentRule(min_score=1e-9))
    first = engine.add_signals(ordered[:1])
    assert len(first) == 1
    for event in events:
        if event.timestamp > cut:
            builder.add(event)
    store.apply(builder.drain(full=True))
    # a later signal elsewhere (a process the graph does not hold) comes past the refresh
    # horizon: the incident's story is rebuilt with what the attack did since
    later = msgspec.structs.replace(
        ordered[0],
        id="elsewhere",
        process_entity_ids=("not-in-the-graph",),
        first_timestamp=cut + 2_000_000_000,
        last_timestamp=cut + 2_000_000_000,
    )
    refreshed = engine.add_signals([later])
    assert [i.id for i in refreshed] == [first[0].id]
    assert refreshed[0].version == 2
    assert len(refreshed[0].nodes) > len(first[0].nodes)
    # nothing new since: no new version
    again = msgspec.structs.replace(
        later, id="elsewhere-2", last_timestamp=later.last_timestamp + 2_000_000_000
    )
    assert engine.add_signals([again]) == []


def _campaign(*alerts: Alert) -> Campaign:
    return Campaign(id="c1", host_id="h", first_ts=0, last_ts=0, alerts={a.id: a for a in alerts})


def test_signals_are_weighed_by_their_kind_whatever_detector_made_them() -> None:
    settings = InvestigationSettings()
    measured = Alert(
        id="m1",
        rule_id="some.model",
        rule_title="unusual process",
        level="medium",
        detector="some-new-detector",
        process_entity_ids=("p1",),
        score=2.0,
        kind=SignalKind.SCORE,
    )
    score = score_campaign(_campaign(measured), settings=settings).score
    assert score == 0.0  # nothing corroborates it (see the corroboration test)
    settings = InvestigationSettings(corroborate_anomalies=False)
    score = score_campaign(_campaign(measured), settings=settings).score
    assert score == 2.0 * settings.anomaly_weight  # by its score, not by its level
    matched = msgspec.structs.replace(measured, kind=SignalKind.MATCH, detector="anomaly")
    score = score_campaign(_campaign(matched), settings=settings).score
    assert score == settings.weight_medium  # by its level, whatever the detector's name


def test_a_stored_rule_is_read_by_its_format_version() -> None:
    stored = json.loads((DATA / "incident-rule" / "rule-v1.json").read_text())
    rule = parse_rule(stored, location="bundle")
    assert (rule.version, rule.min_score) == (RULE_VERSION, 7.25)
    legacy = {key: value for key, value in stored.items() if key != "version"}
    assert parse_rule(legacy, location="bundle") == rule  # stored before versions: version 1
    assert msgspec.to_builtins(rule) == stored  # written with its version
    with pytest.raises(ConfigError, match="bundle: incident rule version 2 is not supported"):
        parse_rule({**stored, "version": 2}, location="bundle")
    with pytest.raises(ConfigError, match="bundle: unreadable incident rule"):
        parse_rule({"min_score": "high"}, location="bundle")


def test_the_configured_rule_choice() -> None:
    calibrated = IncidentRule(min_score=3.0, source="calibrated")
    auto = IncidentSettings()
    assert configured_rule(auto, calibrated=calibrated) == calibrated
    assert configured_rule(auto, calibrated=None) == IncidentRule()
    default = IncidentSettings(rule=RuleChoice.DEFAULT)
    assert configured_rule(default, calibrated=calibrated) == IncidentRule()
    score = IncidentSettings(rule=RuleChoice.SCORE, min_score=9.5)
    assert configured_rule(score, calibrated=calibrated).min_score == 9.5
    with pytest.raises(ConfigError, match=r"incident\.min_score: rule `score` needs a threshold"):
        IncidentSettings(rule=RuleChoice.SCORE)


def _incidents_of_recording(path: Path, *, context: bool = True):
    from provarmor.evaluation.dataset import load_dataset
    from provarmor.pipeline.assembly import AnalysisPlan, build_analysis, compile_rules

    analysis = build_analysis(AnalysisPlan(ruleset=compile_rules([RULES]), context=context))
    if path.is_dir():
        return analysis.collect(load_dataset(path).events())
    report = IngestReport(source=str(path))
    result = analysis.collect(read_ndjson(path, report=report, host=HostContext(id="")))
    assert not report.rejected
    return result


def _in_an_incident(result, alert: Alert) -> bool:
    return any(alert.id in incident.alert_ids for incident in result.incidents())


def test_one_medium_act_filed_under_two_tactics_is_not_two_tactics_of_evidence() -> None:
    # `usermod -aG adm` recorded on this machine (tests/data/lineage), context off: its rule
    # is filed under persistence and privilege escalation, but it is one act, like one stage
    result = _incidents_of_recording(
        ROOT / "tests" / "data" / "lineage" / "admin-work.ndjson.gz", context=False
    )
    usermod = [a for a in result.alerts if a.rule_title == "Account added to a privileged group"]
    assert usermod and all(a.level == "medium" and len(a.tactics) == 2 for a in usermod)
    assert not any(_in_an_incident(result, alert) for alert in usermod)


def test_signals_a_lowering_context_explained_lend_no_tactic_to_an_incident() -> None:
    # corpus chunk-21: an admin's ssh session with a terminal (its signals lowered) opened by
    # a local `ssh -o StrictHostKeyChecking=no` from a root shell without one (neutral, one
    # medium lateral-movement signal); the session's lowered signals join that campaign
    result = _incidents_of_recording(ROOT / "corpus" / "real-world-terminal" / "chunk-21")
    client = [
        a
        for a in result.alerts
        if a.rule_title == "SSH client run with host key checking disabled"
        and a.context_effect == ""
    ]
    assert client and all(a.level == "medium" for a in client)
    assert any(a.context_effect == "lowered" and a.context == "admin" for a in result.alerts)
    assert not any(_in_an_incident(result, alert) for alert in client)
    # two neutral behaviours of that root shell (crontab - and the cron table it wrote) over
    # execution and persistence still make one
    crontab = [
        a
        for a in result.alerts
        if a.rule_title == "Crontab installed or edited with the crontab command"
        and a.context_effect == ""
    ]
    assert crontab and any(_in_an_incident(result, alert) for alert in crontab)
    assert len(result.incidents()) == 1


def _anomaly(entity: str, *, level: str = "high", score: float = 2.5, effect: str = "") -> Alert:
    return Alert(
        id=f"anomaly:{entity}",
        rule_id="provarmor.anomaly.process",
        rule_title="Anomalous process behaviour",
        level=level,
        detector="anomaly",
        process_entity_ids=(entity,),
        score=score,
        kind=SignalKind.SCORE,
        context_effect=effect,
    )


def _rule(level: str, *, effect: str = "") -> Alert:
    return Alert(
        id=f"rule:{level}",
        rule_id=f"rule.{level}",
        rule_title="a rule",
        level=level,
        detector="sigma",
        process_entity_ids=("p9",),
        kind=SignalKind.MATCH,
        context_effect=effect,
    )


def test_an_anomaly_counts_only_where_lineage_or_a_rule_corroborates_it() -> None:
    settings = InvestigationSettings()
    rule = IncidentRule()
    alone = score_campaign(_campaign(_anomaly("p1")), settings=settings)
    assert (alone.score, alone.levels, alone.uncorroborated) == (0.0, {}, 1)
    assert not rule.admits(alone)
    # its own process in a raising lineage (a server's child, a downloaded file)
    kept = score_campaign(_campaign(_anomaly("p1", effect="kept")), settings=settings)
    assert (kept.score, kept.levels, kept.uncorroborated) == (7.5, {"high": 1}, 0)
    assert rule.admits(kept)
    # a raised neighbour corroborates only itself
    mixed = _campaign(_anomaly("p1"), _anomaly("p2", level="medium", score=1.2, effect="kept"))
    summary = score_campaign(mixed, settings=settings)
    assert (summary.levels, summary.uncorroborated) == ({"medium": 1}, 1)
    assert not rule.admits(summary)
    # a rule signal of level medium or above corroborates the whole campaign
    joined = score_campaign(_campaign(_anomaly("p1"), _rule("medium")), settings=settings)
    assert joined.uncorroborated == 0
    assert joined.score == 7.5 + settings.weight_medium
    assert rule.admits(joined)
    # informational and low rule signals (and lowered ones, low after context) describe
    for weak in (_rule("informational"), _rule("low"), _rule("low", effect="lowered")):
        summary = score_campaign(_campaign(_anomaly("p1"), weak), settings=settings)
        assert summary.uncorroborated == 1
        assert not rule.admits(summary)


def test_an_uncorroborated_anomaly_joins_the_incident_a_rule_signal_makes_later() -> None:
    # the nodlink recording's rule signals (no context stamped: neutral), after an anomaly
    # on the process of the first medium-or-above one
    store, signals = _fixture()
    ordered = sorted(signals, key=lambda s: s.first_timestamp)
    first = next(s for s in ordered if s.level in ("medium", "high", "critical"))
    anomaly = msgspec.structs.replace(
        _anomaly(first.process_entity_ids[0], level="critical", score=5.0),
        host_id=first.host_id,
        event_ids=first.event_ids,
        first_timestamp=first.first_timestamp,
        last_timestamp=first.first_timestamp,
    )
    engine = IncidentEngine(store)
    assert engine.add_signals([anomaly]) == []  # a critical anomaly alone: no incident
    (campaign,) = engine.campaigns()
    assert (campaign.score, campaign.uncorroborated) == (0.0, 1)
    engine.add_signals(ordered)
    (incident,) = engine.incidents()
    assert anomaly.id in incident.alert_ids
    assert incident.score == max(c.score for c in engine.campaigns())
    assert all(c.uncorroborated == 0 for c in engine.campaigns())


def test_the_lab_background_raises_anomalies_but_only_the_attack_is_an_incident() -> None:
    # A model learned on a benign lab mix's background (ssh administration, the lab's sshd,
    # admin downloads; seed 102) judges an attack run of seed 1 with every background
    # workload beside it: each seed renames users, directories and tools, so the background
    # looks new to the model. The anomalies of processes with no raising lineage are kept
    # as signals but, with nothing to corroborate them, make no incident.
    from provarmor.detection.anomaly.profile import build_histories
    from provarmor.detection.anomaly.settings import TrainingSettings
    from provarmor.detection.anomaly.train import TrainingData, split_by_time, train_model
    from provarmor.evaluation.dataset import load_dataset
    from provarmor.pipeline.assembly import AnalysisPlan, build_analysis

    path = DATA / "background-b102.ndjson.gz"
    events = read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext())
    training, validation = split_by_time(build_histories(events), 0.2)
    data = TrainingData(training=training, validation=validation)
    model = train_model(data, TrainingSettings(seed=3))
    dataset = load_dataset(DATA / "credential-theft-lateral-s1")
    attacker = set(dataset.labels.processes)

    def analyse(settings: InvestigationSettings):
        plan = AnalysisPlan(model=model, investigation=settings)
        return build_analysis(plan).collect(dataset.events())

    result = analyse(InvestigationSettings())
    benign_alarms = [
        a
        for a in result.alerts
        if a.level in ("high", "critical") and not set(a.process_entity_ids) & attacker
    ]
    assert len(benign_alarms) >= 5  # measured: 11 high ones, every one in a neutral lineage
    assert all(a.context_effect != "kept" for a in benign_alarms)
    incidents = result.incidents()
    assert len(incidents) == 1
    processes = {n.id for n in incidents[0].nodes if n.kind == "process"}
    assert len(processes & attacker) / len(processes) >= 0.9  # measured: 0.97
    # without corroboration, each of those workloads was an incident of its own
    uncorroborated = analyse(InvestigationSettings(corroborate_anomalies=False))
    assert len(uncorroborated.incidents()) >= 5  # measured: 11
