"""``provarmor response``: check a policy, replay a recording through a policy in dry-run,
list the audit trail (table and OCSF), undo a real quarantine by its id (once)."""

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provarmor.cli.app import app
from provarmor.model.errors import ConfigError, ParseError
from provarmor.response.action import build_context
from provarmor.response.policy import Mode, Policy
from provarmor.response.records import ActionKind, ActionRequest, FileTarget, Outcome
from provarmor.response.responder import Responder
from provarmor.response.settings import ResponseSettings

runner = CliRunner(env={"COLUMNS": "300"})
DATA = Path(__file__).parents[2] / "data" / "response"
LAB = Path(__file__).parents[2] / "data" / "lab"


def test_check_explains_a_policy_and_locates_errors(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "mode: enforce\nrules:\n  - name: contain\n    severity: high\n"
        "    techniques: [T1059]\n    actions: [suspend, kill]\n"
    )
    result = runner.invoke(app, ["response", "check", str(policy)])
    assert result.exit_code == 0, result.output
    assert "mode enforce; at most 20 actions per 3600 s per host; 1 rule(s)" in result.output
    assert "contain: suspend, kill when severity >= high and technique in T1059" in result.output
    policy.write_text("rules:\n  - name: dropped\n    lineage: [downloaded]\n    actions: kill\n")
    result = runner.invoke(app, ["response", "check", str(policy)])
    assert "dropped: kill when severity >= informational and a signal's lineage in downloaded" in (
        result.output
    )
    policy.write_text("mode: enforce\nrate_limit: {actions: many}\n")
    result = runner.invoke(app, ["response", "check", str(policy)])
    assert isinstance(result.exception, ParseError)
    assert result.exception.location == f"{policy}:2"


def test_replay_says_what_a_policy_would_do_and_touches_nothing(tmp_path):
    """The recorded tc-browser-dropper run through the shipped policy, set to enforce in
    the file: replay still only records (dry-run); the trail names the downloaded
    program's shell; a second replay into the same folder is refused."""
    policy = tmp_path / "enforce.yaml"
    policy.write_text(
        "mode: enforce\nrules:\n  - name: dropped\n    severity: medium\n"
        "    lineage: [downloaded]\n    actions: [kill]\n"
    )
    recording = LAB / "tc-browser-dropper-seed1" / "events.ndjson.gz"
    out = tmp_path / "replay"
    argv = ["response", "replay", str(recording), "--out", str(out), "--policy", str(policy)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "1,289 events, 0 rejected" in result.output
    assert "kill pid 24105 (/bin/sh): dry_run (policy:dropped; incident" in result.output
    trail = out / "1-tc-browser-dropper-seed1" / "response" / "actions.jsonl"
    lines = [json.loads(line) for line in trail.read_text().splitlines()]
    assert lines and {line["mode"] for line in lines} == {"dry-run"}
    again = runner.invoke(app, argv)
    assert isinstance(again.exception, ConfigError) and "exists already" in str(again.exception)


def test_actions_lists_results_and_exports_ocsf(tmp_path):
    (tmp_path / "response").mkdir()
    shutil.copy(DATA / "actions-v1.jsonl", tmp_path / "response" / "actions.jsonl")
    result = runner.invoke(app, ["response", "actions", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (
        "quarantine" in result.output
        and "restore (undoes act-5b1f0e9c2d11a0b3c4d5)" in result.output
    )
    assert "policy:contain implants" in result.output and "alice" in result.output
    result = runner.invoke(app, ["response", "actions", "--state-dir", str(tmp_path), "--ocsf"])
    events = [json.loads(line) for line in result.output.splitlines()]
    assert [(e["class_uid"], e["activity_name"]) for e in events] == [
        (7002, "Evict"),
        (7002, "Restore"),
    ]
    empty = runner.invoke(app, ["response", "actions", "--state-dir", str(tmp_path / "none")])
    assert "no actions yet" in empty.output


def test_undo_restores_a_quarantined_file_once(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("quarantine keeps owner and mode: root only")
    implant = tmp_path / "implant"
    implant.write_bytes(b"\x7fELF payload")
    context = build_context(ResponseSettings(state_dir=tmp_path / "state" / "response"))
    responder = Responder.open(Policy(mode=Mode.ENFORCE), context)
    request = ActionRequest(
        id="act-q1",
        kind=ActionKind.QUARANTINE,
        target=FileTarget(path=str(implant)),
        requested_by="alice",
    )
    assert responder.run(request).outcome is Outcome.DONE
    assert not implant.exists()
    state = str(tmp_path / "state")
    result = runner.invoke(app, ["response", "undo", "act-q1", "--state-dir", state])
    assert result.exit_code == 0, result.output
    assert "restore: done" in result.output
    assert implant.read_bytes() == b"\x7fELF payload"
    again = runner.invoke(app, ["response", "undo", "act-q1", "--state-dir", state])
    assert isinstance(again.exception, ConfigError) and "undone already" in str(again.exception)
    unknown = runner.invoke(app, ["response", "undo", "act-none", "--state-dir", state])
    assert isinstance(unknown.exception, ConfigError)
