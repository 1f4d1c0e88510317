"""A short scenario and a short benign workload recorded by the real agent (root)."""

import os
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from provarmor.cli.app import app
from provarmor.evaluation.dataset import load_dataset

pytestmark = [pytest.mark.privileged, pytest.mark.slow]
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(autouse=True)
def _needs_root_and_bpftrace():
    if os.geteuid() != 0:
        pytest.skip("the lab and the agent need root")
    if shutil.which("bpftrace") is None:
        pytest.skip("bpftrace is not installed (scripts/bootstrap.sh dev installs it)")


def test_scenario_dataset_labels_the_process_tree_the_scenario_started(tmp_path):
    out = tmp_path / "ds"
    result = runner.invoke(
        app, ["lab", "run", "nodlink-ubuntu", "--seed", "7", "--sensor", "ebpf", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {
        "events.ndjson.gz",
        "raw.jsonl.gz",
        "labels.json",
        "entity-labels.json",
        "dataset.json",
        "transcript.log",
    }
    dataset = load_dataset(out)
    assert dataset.truth.completed
    events = list(dataset.events())
    assert dataset.meta.events == len(events) > 0
    by_entity = {}
    for event in events:
        by_entity.setdefault(event.process.entity_id, event.process)
    roots = {root.pid for root in dataset.truth.attacker_roots}
    labelled = set(dataset.labels.processes)
    # every attacker root the lab started is labelled, and so are their children
    root_entities = {e for e, p in by_entity.items() if p.pid in roots and e in labelled}
    assert root_entities, "no attacker root was found among the labelled processes"
    children = {
        e
        for e, p in by_entity.items()
        if p.parent is not None and p.parent.entity_id in root_entities
    }
    assert children
    assert children <= labelled
    # the lab's own web server is infrastructure, not attacker
    infra = {p.pid for p in dataset.truth.infrastructure}
    assert not {e for e in labelled if by_entity.get(e) and by_entity[e].pid in infra}


def test_benign_dataset_has_no_attacker(tmp_path):
    out = tmp_path / "benign"
    result = runner.invoke(
        app,
        [
            "lab",
            "run",
            "benign:cron-jobs",
            "--duration",
            "5",
            "--seed",
            "3",
            "--sensor",
            "ebpf",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    dataset = load_dataset(out)
    assert dataset.meta.kind == "benign"
    assert dataset.labels.processes == []
    assert dataset.meta.events > 0


def test_a_lab_run_that_fails_leaves_no_agent_state_behind(tmp_path):
    """The run fails before recording (an unknown background workload): the recorder's
    state folder is removed then, not by the garbage collector later with a warning."""
    import gc
    import glob
    import tempfile
    import warnings

    pattern = os.path.join(tempfile.gettempdir(), "provarmor-lab-agent-*")
    before = set(glob.glob(pattern))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(
            app,
            [
                "lab",
                "run",
                "nodlink-ubuntu",
                "--background",
                "nosuchworkload",
                "--out",
                str(tmp_path / "ds"),
            ],
        )
        gc.collect()
    assert result.exit_code != 0
    assert "nosuchworkload" in str(result.exception) + result.output
    assert set(glob.glob(pattern)) == before
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.exclusive  # enforce acts on the host's incidents: no other test's programs
def test_a_run_with_response_enforce_contains_the_implant_and_keeps_the_trail(tmp_path):
    """The recording agent analyses what it records and kills what its own incident names
    and blocks the endpoints its processes reached, in the victim's network namespace; the
    responder's audit trail becomes the dataset's actions.jsonl (about 1 minute)."""
    from provarmor.evaluation.dataset import ACTIONS_FILE
    from provarmor.evaluation.scoring import evaluate
    from provarmor.pipeline.assembly import AnalysisPlan, build_analysis
    from provarmor.response.audit import Phase, read_audit

    out = tmp_path / "ds"
    host_table = _host_table()
    result = runner.invoke(
        app,
        [
            "lab",
            "run",
            "nodlink-ubuntu",
            "--seed",
            "7",
            "--sensor",
            "ebpf",
            "--response",
            "enforce",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "response (enforce):" in result.output
    records, errors = read_audit(out / ACTIONS_FILE)
    assert errors == [] and records
    assert {r.mode for r in records} == {"enforce"}
    assert all(r.request.requested_by == "policy:contain high-severity incidents" for r in records)
    dataset = load_dataset(out)
    killed = [
        r.request.target.entity_id
        for r in records
        if r.phase is Phase.RESULT and r.request.kind == "kill" and r.outcome == "done"
    ]
    assert killed and set(killed) <= set(dataset.labels.processes)
    (score,) = evaluate([dataset], lambda: build_analysis(AnalysisPlan())).datasets
    containment = score.containment
    assert containment is not None and containment.contained
    assert containment.non_attack_process_actions == 0
    assert containment.attack_to_containment_s is not None
    # the implant's C2 endpoint was blocked in the victim's namespace, never on this host
    assert containment.firewall_actions >= 1 and containment.non_attack_blocks == 0
    assert containment.connections_after_firewall == 0
    assert _host_table() == host_table


def _host_table() -> str:
    """This machine's own ``inet provarmor`` table ('' when there is none)."""
    listed = subprocess.run(
        ["nft", "list", "table", "inet", "provarmor"], capture_output=True, text=True
    )
    return listed.stdout if listed.returncode == 0 else ""


def test_the_response_option_offers_the_policy_modes():
    from provarmor.cli.lab_commands import ResponseMode
    from provarmor.response.policy import Mode

    assert {m.value for m in ResponseMode} == {m.value for m in Mode}
