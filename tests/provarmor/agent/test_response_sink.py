"""The standalone agent's analysis with response, on the recorded nodlink attack (real
events, bundled Sigma rules, real incident engine): incidents reach the responder, which
records what it would do in dry-run; in enforce the recorded processes are not running on
this host, so the identity check refuses every process action (nothing is hit); a restart
resumes at the committed position and asks for nothing twice."""

import json
from pathlib import Path

import msgspec
import pytest

from provarmor.agent.response_sink import ResponseSetup, ResponseSink
from provarmor.agent.spool import SpoolPosition
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.pipeline.analysis import batches
from provarmor.pipeline.assembly import AnalysisPlan, compile_rules
from provarmor.response.action import build_context
from provarmor.response.audit import Phase, read_audit
from provarmor.response.policy import (
    Mode,
    Policy,
    PolicyRule,
    RateLimit,
    bundled_policy,
    read_policy,
)
from provarmor.response.records import ActionKind, Outcome, ProcessTarget
from provarmor.response.responder import Responder
from provarmor.response.settings import ResponseSettings
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

LAB = Path(__file__).parents[2] / "data" / "lab"
ATTACK = LAB / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
DROPPER = LAB / "tc-browser-dropper-seed1" / "events.ndjson.gz"


def recorded(path: Path) -> list:
    return list(read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext()))


@pytest.fixture(scope="module")
def events():
    return recorded(ATTACK)


@pytest.fixture(scope="module")
def ruleset():
    return compile_rules([bundled_rules()])


def sink_for(tmp_path: Path, ruleset, mode: Mode, *actions: ActionKind) -> ResponseSink:
    rule = PolicyRule(
        name="contain", actions=actions or (ActionKind.KILL, ActionKind.BLOCK), severity="medium"
    )
    # nft is `false` here: these tests never touch a ruleset (the block tests use a netns)
    settings = ResponseSettings(state_dir=tmp_path / "response", nft_command=("false",))
    context = build_context(settings)
    responder = Responder.open(Policy(mode=mode, rules=(rule,)), context)
    setup = ResponseSetup(plan=AnalysisPlan(ruleset=ruleset), responder=responder)
    return ResponseSink(tmp_path / "graph.db", setup=setup, alerts=tmp_path / "alerts.jsonl")


def feed(sink: ResponseSink, events, *, start: int = 0) -> int:
    sequence = start
    for batch in batches(events[start:]):
        sequence += len(batch)
        sink.write(batch, SpoolPosition(sequence=sequence))
    return sequence


def test_dry_run_records_what_the_policy_would_do(tmp_path, events, ruleset):
    sink = sink_for(tmp_path, ruleset, Mode.DRY_RUN)
    feed(sink, events)
    sink.close()
    assert sink.incident_updates > 0
    records, errors = read_audit(tmp_path / "response" / "actions.jsonl")
    assert errors == []
    results = [r for r in records if r.phase is Phase.RESULT]
    dry = [r for r in results if r.outcome is Outcome.DRY_RUN]
    limited = [r for r in results if r.outcome is Outcome.REFUSED]
    assert len(dry) == 20 and len(dry) + len(limited) == len(results)  # default limit: 20
    assert all("rate limit" in r.message for r in limited)
    kinds = {r.request.kind for r in results}
    assert ActionKind.KILL in kinds
    assert all(r.request.incident_id and r.request.reason for r in results)
    assert (tmp_path / "alerts.jsonl").read_text().count("\n") > 0
    counters = sink.counters()
    assert counters["response.dry_run"] == len(dry)
    assert counters["response.rate_limited"] == len(limited)
    assert counters["response.alert_rules.forgotten"] == 0


def test_enforce_never_hits_processes_that_are_not_the_recorded_ones(
    tmp_path, events, ruleset, root_user
):
    sink = sink_for(tmp_path, ruleset, Mode.ENFORCE, ActionKind.KILL)
    feed(sink, events)
    sink.close()
    records, _ = read_audit(tmp_path / "response" / "actions.jsonl")
    kills = [r for r in records if r.phase is Phase.RESULT and r.request.kind is ActionKind.KILL]
    assert kills
    assert all(r.outcome is Outcome.REFUSED and "pid reused" in r.message for r in kills)


def test_a_restart_resumes_and_asks_nothing_twice(tmp_path, events, ruleset):
    half = len(events) // 2
    first = sink_for(tmp_path, ruleset, Mode.DRY_RUN)
    feed(first, events[:half])
    first.store.close()  # killed: no finish
    second = sink_for(tmp_path, ruleset, Mode.DRY_RUN)
    committed = second.committed()
    assert committed is not None and 0 < committed.sequence <= half
    feed(second, events, start=committed.sequence)
    second.close()
    records, _ = read_audit(tmp_path / "response" / "actions.jsonl")
    asked = [r.request.id for r in records if r.phase is Phase.PROPOSED]
    assert len(asked) == len(set(asked))


@pytest.fixture
def root_user():
    import os

    if os.geteuid() != 0:
        pytest.skip("reading other processes' /proc entries needs root")


def test_an_unwritable_audit_trail_skips_the_response_and_counts_it(tmp_path, events, ruleset):
    sink = sink_for(tmp_path, ruleset, Mode.DRY_RUN)
    trail = sink.responder.audit.path
    trail.parent.mkdir(parents=True, exist_ok=True)
    trail.mkdir()  # a folder where the trail should be: every write fails
    feed(sink, events)
    sink.close()
    assert sink.incident_updates > 0
    assert 0 < sink.counters()["response.skipped.lost"] <= sink.incident_updates
    assert trail.is_dir() and list(trail.iterdir()) == []


def _kill_targets(folder: Path, ruleset, events, *, lineage: bool) -> list[str]:
    sink = sink_for(folder, ruleset, Mode.DRY_RUN, ActionKind.KILL)
    unlimited = RateLimit(actions=100_000, seconds=3600)
    sink.responder.policy = msgspec.structs.replace(sink.responder.policy, rate_limit=unlimited)
    assert sink.side is not None  # the plan judges signals by lineage (the default)
    if not lineage:
        sink.side = None
    feed(sink, events)
    sink.close()
    records, _ = read_audit(folder / "response" / "actions.jsonl")
    return [
        r.request.target.entity_id
        for r in records
        if r.phase is Phase.RESULT and isinstance(r.request.target, ProcessTarget)
    ]


def test_the_analysis_lineage_reaches_the_attacks_silent_ancestors_and_nothing_else(
    tmp_path, events, ruleset
):
    """On the recorded nodlink attack (a web shell's shell runs the dropper): with the
    sink's lineage, kills also name the shells above the signalling processes that raised
    no signal themselves; every one of them is the attacker's (the run's labels, read here
    only to check), none is the web server the attack came in through."""
    signalling = _kill_targets(tmp_path / "plain", ruleset, events, lineage=False)
    reached = _kill_targets(tmp_path / "lineage", ruleset, events, lineage=True)
    labels = json.loads((ATTACK.parent / "entity-labels.json").read_text())
    attacker = set(labels["processes"])
    ancestors = set(reached) - set(signalling)
    assert ancestors and ancestors <= attacker
    assert set(signalling) <= set(reached)
    assert set(reached) <= attacker


def _policy_results(folder: Path, ruleset, policy: Policy, events) -> tuple[int, list]:
    """(incident updates, the result records) of ``policy`` in dry-run over ``events``."""
    settings = ResponseSettings(state_dir=folder / "response", nft_command=("false",))
    responder = Responder.open(
        msgspec.structs.replace(policy, mode=Mode.DRY_RUN), build_context(settings)
    )
    setup = ResponseSetup(plan=AnalysisPlan(ruleset=ruleset), responder=responder)
    sink = ResponseSink(folder / "graph.db", setup=setup, alerts=folder / "alerts.jsonl")
    feed(sink, events)
    sink.close()
    trail = folder / "response" / "actions.jsonl"
    if not trail.exists():  # nothing was asked for
        return sink.incident_updates, []
    records, errors = read_audit(trail)
    assert errors == []
    return sink.incident_updates, [r for r in records if r.phase is Phase.RESULT]


def test_the_shipped_policy_contains_a_downloaded_programs_medium_incident(tmp_path, ruleset):
    """The recorded tc-browser-dropper run: a browser downloads a native helper and runs it
    (a reverse shell); its shell's discovery, key search and upload make a medium incident
    (two tactics, no high signal). The shipped policy kills the shell the downloaded program
    became (lineage ``downloaded``); the rule on severity alone would not have acted. The
    run's labels are read only to check that every target is the attacker's."""
    events = recorded(DROPPER)
    shipped = read_policy(bundled_policy())
    _, results = _policy_results(tmp_path / "shipped", ruleset, shipped, events)
    kills = [r for r in results if r.request.kind is ActionKind.KILL]
    assert kills and all(r.outcome is Outcome.DRY_RUN for r in results)
    assert {r.request.requested_by for r in kills} == {"policy:contain downloaded programs"}
    assert all("(medium)" in r.request.reason for r in kills)
    targets = {
        r.request.target.entity_id for r in kills if isinstance(r.request.target, ProcessTarget)
    }
    labels = json.loads((DROPPER.parent / "entity-labels.json").read_text())
    assert targets <= set(labels["processes"])
    implant = [r for r in kills if r.request.target.executable == "/bin/sh"]
    assert implant, "the downloaded program's shell (the implant) is a target"

    severity_only = msgspec.structs.replace(
        shipped, rules=tuple(rule for rule in shipped.rules if not rule.lineage)
    )
    updates, results = _policy_results(tmp_path / "severity", ruleset, severity_only, events)
    assert updates > 0 and results == []


def test_the_shipped_policy_leaves_benign_work_alone(tmp_path, ruleset):
    """The recorded benign lab mix (builds, tests, git, downloads, admin work, cron): its
    medium incidents (an archive of sensitive files, a ptrace) come from no downloaded
    program; the shipped policy asks for nothing."""
    events = recorded(LAB / "benign-seed2" / "events.ndjson.gz")
    shipped = read_policy(bundled_policy())
    updates, results = _policy_results(tmp_path, ruleset, shipped, events)
    assert updates > 0 and results == []
