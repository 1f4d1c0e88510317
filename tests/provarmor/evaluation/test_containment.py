"""Containment scored from a real lab run recorded with ``--response enforce`` (the agent
killed the dropped implant and quarantined it), and from copies of it whose audit trail was
changed to show what each figure catches."""

import json
import shutil

import msgspec
import pytest

from provarmor.evaluation.containment import tracker_for
from provarmor.evaluation.dataset import ACTIONS_FILE, load_dataset
from provarmor.evaluation.scoring import containment_summary, evaluate
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis
from provarmor.response.audit import AuditRecord, Phase, read_audit
from provarmor.response.records import (
    ActionKind,
    FileTarget,
    NetworkTarget,
    Outcome,
    ProcessTarget,
)

FIXTURE = "nodlink-ubuntu-response-seed1"


@pytest.fixture
def run_dir(data_dir, tmp_path):
    """A private copy of the recorded run (tests rewrite its audit trail)."""
    return shutil.copytree(data_dir / "lab" / FIXTURE, tmp_path / FIXTURE)


def _score(*paths):
    report = evaluate([load_dataset(p) for p in paths], lambda: build_analysis(AnalysisPlan()))
    return report


def _records(path):
    records, errors = read_audit(path / ACTIONS_FILE)
    assert errors == []
    return records


def _write(path, records):
    (path / ACTIONS_FILE).write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))


def _kill(records):
    (kill,) = [
        r
        for r in records
        if r.phase is Phase.RESULT and r.outcome is Outcome.DONE and r.request.kind == "kill"
    ]
    return kill


def test_the_recorded_run_is_contained_by_the_kill_of_the_implant(run_dir):
    records = _records(run_dir)
    kill = _kill(records)
    score = _score(run_dir).datasets[0].containment
    assert score is not None and score.mode == "enforce" and score.contained
    # containment is the kill's result record; the incident is its incident's first proposal
    first_proposal = min(
        r.time_ns
        for r in records
        if r.phase is Phase.PROPOSED and r.request.incident_id == kill.request.incident_id
    )
    assert score.incident_to_containment_s == round((kill.time_ns - first_proposal) / 1e9, 3)
    assert 0 < score.attack_to_incident_s < score.attack_to_containment_s
    assert score.attack_to_containment_s == pytest.approx(
        score.attack_to_incident_s + score.incident_to_containment_s, abs=0.002
    )
    assert score.attacker_processes_after == ()
    assert score.attacker_connections_after == 0
    assert score.non_attack_process_actions == 0
    # every action of the run is listed; the refused ones are kills of processes long gone
    assert len(score.actions) == sum(1 for r in records if r.phase is Phase.RESULT)
    refused = [a for a in score.actions if a.outcome == "refused"]
    assert refused and all("gone" in a.message and a.attacker for a in refused)
    assert {a.kind for a in score.actions if a.outcome == "done"} == {"kill", "quarantine"}


def test_the_first_attacker_event_comes_from_the_recording(run_dir):
    dataset = load_dataset(run_dir)
    tracker = tracker_for(dataset)
    assert tracker is not None
    for event in dataset.events():
        tracker.see(event)
    first = min(tracker.first_ns.values())
    score = _score(run_dir).datasets[0].containment
    kill = _kill(_records(run_dir))
    assert score.attack_to_containment_s == round((kill.time_ns - first) / 1e9, 3)


def test_attacker_activity_after_an_earlier_containment_is_counted(run_dir):
    """Moving the kill back to just after the attack's first second: the implant and its
    beacon to the C2 were active after it."""
    dataset = load_dataset(run_dir)
    tracker = tracker_for(dataset)
    for event in dataset.events():
        tracker.see(event)
    early = min(tracker.first_ns.values()) + 1_000_000_000
    assert any(ns > early for ns, _ in tracker.egress), "the recording has C2 traffic"
    records = [
        msgspec.structs.replace(r, time_ns=early) if r == _kill(_records(run_dir)) else r
        for r in _records(run_dir)
    ]
    _write(run_dir, records)
    score = _score(run_dir).datasets[0].containment
    assert score.contained
    assert len(score.attacker_processes_after) >= 1
    assert any("irqbalance" in p for p in score.attacker_processes_after)
    assert score.attacker_connections_after == sum(1 for ns, _ in tracker.egress if ns > early)


def _blocked(kill: AuditRecord, ip: str, port: int, time_ns: int) -> AuditRecord:
    request = msgspec.structs.replace(
        kill.request,
        id=f"block-{ip}-{port}",
        kind=ActionKind.BLOCK,
        target=NetworkTarget(ip=ip, port=port),
    )
    return msgspec.structs.replace(kill, request=request, time_ns=time_ns)


def test_traffic_a_block_covered_and_blocks_of_other_endpoints_are_counted(run_dir):
    """A block of the C2 endpoint the recording beacons to, moved to just after the attack's
    first second: every later connect or send to it is counted; a block of an address the
    attack never reached is a non-attack block."""
    dataset = load_dataset(run_dir)
    tracker = tracker_for(dataset)
    for event in dataset.events():
        tracker.see(event)
    early = min(tracker.first_ns.values()) + 1_000_000_000
    later = sorted(endpoint for ns, endpoint in tracker.egress if ns > early)
    assert later, "the recording has C2 traffic"
    ip, _, port = later[0].rpartition(":")
    records = _records(run_dir)
    kill = _kill(records)
    _write(run_dir, [*records, _blocked(kill, ip, int(port), early)])
    score = _score(run_dir).datasets[0].containment
    assert score.firewall_actions == 1 and score.non_attack_blocks == 0
    assert score.connections_after_firewall == sum(1 for e in later if e == later[0])
    _write(run_dir, [*records, _blocked(kill, "10.213.0.254", 80, early)])
    score = _score(run_dir).datasets[0].containment
    assert score.non_attack_blocks == 1 and score.connections_after_firewall == 0


def test_a_quarantine_of_a_file_the_attack_did_not_write_is_counted(run_dir):
    """The run's quarantine aimed at another engineer's file on the shared machine."""
    records = _records(run_dir)
    (quarantine,) = [
        r
        for r in records
        if r.phase is Phase.RESULT and r.request.kind == "quarantine" and r.outcome is Outcome.DONE
    ]
    assert _score(run_dir).datasets[0].containment.non_attack_file_actions == 0
    other = FileTarget(path="/tmp/pytest-of-root/pytest-1/test_setuid0/envx")
    wrong = msgspec.structs.replace(
        quarantine, request=msgspec.structs.replace(quarantine.request, target=other)
    )
    _write(run_dir, [wrong if r == quarantine else r for r in records])
    assert _score(run_dir).datasets[0].containment.non_attack_file_actions == 1


def test_without_a_firewall_action_nothing_is_counted_after_one(run_dir):
    score = _score(run_dir).datasets[0].containment
    assert (score.firewall_actions, score.connections_after_firewall) == (0, None)
    assert score.non_attack_blocks == 0


def test_an_action_on_a_process_that_is_not_the_attackers_is_counted(run_dir):
    """The same kill aimed at the lab's web server (infrastructure, never attacker)."""
    dataset = load_dataset(run_dir)
    web = next(e.process for e in dataset.events() if e.process.pid == dataset.truth.web_pid)
    kill = _kill(_records(run_dir))
    wrong = msgspec.structs.replace(
        kill,
        request=msgspec.structs.replace(
            kill.request,
            target=ProcessTarget(entity_id=web.entity_id, pid=web.pid, executable=web.executable),
        ),
    )
    _write(run_dir, [wrong if r == kill else r for r in _records(run_dir)])
    score = _score(run_dir).datasets[0].containment
    assert score.non_attack_process_actions == 1
    # the quarantine of the implant still contained the run, after the kill's time
    assert score.contained


def test_a_dry_run_contains_nothing_but_says_what_it_would_have_done(run_dir):
    records = [
        msgspec.structs.replace(r, mode="dry-run", outcome=Outcome.DRY_RUN)
        if r.phase is Phase.RESULT
        else msgspec.structs.replace(r, mode="dry-run")
        for r in _records(run_dir)
        if r.phase is not Phase.EXECUTING
    ]
    _write(run_dir, records)
    score = _score(run_dir).datasets[0].containment
    assert score.mode == "dry-run" and not score.contained
    assert score.incident_to_containment_s is None and score.attack_to_containment_s is None
    assert score.attack_to_incident_s is not None
    assert score.attacker_processes_after is None and score.attacker_connections_after is None
    assert {a.outcome for a in score.actions} == {"dry_run"}


def test_a_damaged_line_is_named_and_the_rest_is_scored(run_dir):
    path = run_dir / ACTIONS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b'{"format_version": 1, "phase": "resu\n' + b"".join(lines[1:]))
    score = _score(run_dir).datasets[0].containment
    assert len(score.unreadable_lines) == 1
    assert f"{path}:2" in score.unreadable_lines[0]
    assert score.contained and len(score.actions) == 10


def test_datasets_without_a_trail_have_no_containment(data_dir, run_dir):
    report = _score(data_dir / "lab" / "nodlink-ubuntu-seed1")
    assert report.datasets[0].containment is None
    assert "contained" not in report.totals()
    assert containment_summary(report.datasets) == {}


def test_totals_and_mean_std_over_runs(data_dir, run_dir):
    report = _score(run_dir, data_dir / "lab" / "nodlink-ubuntu-seed1")
    totals = report.totals()
    assert totals["response_runs"] == 1 and totals["contained"] == 1.0
    score = report.datasets[0].containment
    assert totals["incident_to_containment_p99_s"] == score.incident_to_containment_s
    assert totals["non_attack_process_actions"] == 0
    summary = containment_summary(report.datasets)
    assert set(summary) == {"nodlink-ubuntu", "total"}
    assert summary["total"]["attack_to_containment_s"] == (score.attack_to_containment_s, 0.0)
    assert summary["total"]["contained"] == (1.0, 0.0)


def test_the_fixture_trail_is_the_responders_own_format(run_dir):
    for line in (run_dir / ACTIONS_FILE).read_bytes().splitlines():
        record = msgspec.json.decode(line, type=AuditRecord)
        assert record.format_version == 1
        assert (
            json.loads(line)["request"]["requested_by"] == "policy:contain high-severity incidents"
        )


def test_a_run_whose_responder_was_asked_for_nothing_is_not_contained(run_dir):
    (run_dir / ACTIONS_FILE).write_bytes(b"")
    report = _score(run_dir)
    score = report.datasets[0].containment
    assert score is not None and not score.contained and score.actions == ()
    assert score.attack_to_incident_s is None
    assert report.totals()["contained"] == 0.0


def test_the_incident_is_the_one_whose_action_contained_the_run(run_dir):
    """An earlier proposal for another incident (the lab's own server, say) moves neither
    the incident's time nor the containment."""
    records = _records(run_dir)
    before = _score(run_dir).datasets[0].containment
    first = min((r for r in records if r.phase is Phase.PROPOSED), key=lambda r: r.time_ns)
    other = msgspec.structs.replace(
        first,
        time_ns=first.time_ns - 1_000_000_000,
        request=msgspec.structs.replace(first.request, id="act-other", incident_id="inc-other"),
    )
    _write(run_dir, [other, *records])
    after = _score(run_dir).datasets[0].containment
    assert after.incident_to_containment_s == before.incident_to_containment_s
    assert after.attack_to_containment_s == before.attack_to_containment_s
