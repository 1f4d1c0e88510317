"""The SSH brute-force scenario: its plan for any seed, and one real run recorded by the
agent with the host journal, analysed into one incident that starts at the login."""

import os
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provarmor.cli.app import app
from provarmor.cli.config_command import OPTIONS
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.evaluation.dataset import load_dataset
from provarmor.lab.context import LabContext
from provarmor.lab.journal import DEV_LOG, JOURNAL_DIR
from provarmor.lab.registry import SCENARIOS, records_host_logs
from provarmor.lab.scenario import Channel
from provarmor.lab.scenarios.ssh_brute_force import SCENARIO, WEAK_PASSWORDS, WRONG_GUESSES
from provarmor.model.incident import NodeRole
from provarmor.pipeline.assembly import build_analysis, plan_from_config


def test_the_account_gets_a_weak_password_that_the_guesses_reach_last(plan_checks):
    for ctx, plan in plan_checks(SCENARIO):
        useradd, chpasswd = plan.setup_commands
        user = useradd[-1]
        assert useradd[0] == "useradd" and chpasswd[:2] == ("sh", "-c")
        _, password = shlex.split(chpasswd[2].split("|")[0])[1].split(":", 1)
        assert password in WEAK_PASSWORDS
        guesses, tool = plan.actions
        listed = shlex.split(guesses.command.split(";")[0])[3:]
        assert listed == [*WRONG_GUESSES, password] and len(WRONG_GUESSES) >= 5
        assert f"{user}@{ctx.address('host2')}" in guesses.command
        assert all(a.channel is Channel.REMOTE and a.lateral_to == "host2" for a in plan.actions)
        assert ctx.payload_url(plan.payloads[0].path) in tool.command
        assert all(path in tool.command for path in plan.artifacts)


def test_only_this_scenario_is_recorded_with_host_logs():
    assert records_host_logs(SCENARIO.name)
    assert [s.name for s in SCENARIOS if s.host_logs] == [SCENARIO.name]
    assert not records_host_logs("benign") and not records_host_logs("benign:cron-jobs")


@pytest.mark.privileged
@pytest.mark.slow
def test_a_recorded_run_is_one_incident_whose_root_cause_is_the_guessed_login(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the lab and the agent need root")
    if shutil.which("bpftrace") is None or not Path("/lib/systemd/systemd-journald").exists():
        pytest.skip("bpftrace or systemd-journald is not installed (scripts/bootstrap.sh dev)")
    journal_before = (JOURNAL_DIR.exists(), DEV_LOG.exists())
    out = tmp_path / "ds"
    result = CliRunner().invoke(
        app, ["lab", "run", SCENARIO.name, "--seed", "3", "--sensor", "ebpf", "--out", str(out)]
    )
    assert result.exit_code == 0, (result.output, getattr(result.exception, "location", ""))
    assert (JOURNAL_DIR.exists(), DEV_LOG.exists()) == journal_before
    dataset = load_dataset(out)
    truth = dataset.truth
    assert truth.completed, (out / "transcript.log").read_text()[-3000:]
    assert truth.attacker_roots == () and {s.role for s in truth.spawners} == {"host2"}
    events = list(dataset.events())
    logins = [e for e in events if e.event.dataset == "journald" and e.source is not None]
    attacker = truth.addresses["c2"]
    assert any(e.source.ip == attacker for e in logins if e.source is not None)
    analysis = build_analysis(plan_from_config(OPTIONS.load(), rules=(bundled_rules(),)))
    incidents = analysis.collect(iter(events)).incidents()
    labelled = set(dataset.labels.processes)
    # the shared machine's other work may raise incidents of its own: the attack's are those
    # holding processes the lab labelled
    (incident,) = [i for i in incidents if {n.id for n in i.nodes} & labelled]
    root = next(n for n in incident.nodes if n.id == incident.root_cause)
    assert root.role is NodeRole.ROOT_CAUSE and root.ip == attacker
    user = SCENARIO.plan(LabContext.from_seed(3)).setup_commands[0][-1]
    failures = len(WRONG_GUESSES)
    assert (
        root.label == f"login of {user} from {attacker} (password) after {failures} failed attempts"
    )
