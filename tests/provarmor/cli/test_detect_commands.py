"""``detect`` and ``rules check`` end to end on real recordings (in-process through Typer's
runner): alerts in each format, incidents with their attack story, suppressions, the
bundled rule pack by default, host data printed escaped; the host-log rules on the real
journald and syslog captures of tests/data/hostlogs."""

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from provarmor.detection.sigma.loader import bundled_rules

DATA = Path(__file__).resolve().parents[2] / "data"
CHAIN = DATA / "auditd" / "attack_chain.log"
LAB_ATTACK = DATA / "lab" / "nodlink-ubuntu-seed1"
RULE_CAPTURES = DATA / "rules"


def test_detect_emits_attack_tagged_alerts(tmp_path, shared_data, invoke):
    out = tmp_path / "alerts.jsonl"
    result = invoke(
        "detect",
        CHAIN,
        "--format",
        "auditd",
        "--rules",
        shared_data / "sigma",
        "--alert-format",
        "ecs",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert alerts
    assert all(alert["event"]["kind"] == "alert" for alert in alerts)
    techniques = {t["id"] for alert in alerts for t in alert["threat"]["technique"]}
    assert "T1105" in techniques  # curl download


def test_rules_check_reports_fraction(shared_data, invoke):
    result = invoke("rules", "check", shared_data / "sigma")
    assert "248/248 loaded (100.0 %)" in result.output  # host-log services included


def test_detect_uses_the_bundled_pack_by_default(tmp_path, invoke):
    manifest = json.loads((RULE_CAPTURES / "manifest.json").read_text())
    capture = RULE_CAPTURES / manifest["cases"]["shadow_read"]["file"]
    (rule_file,) = bundled_rules().rglob("shadow_file_read.yml")
    rule_id = yaml.safe_load(rule_file.read_text())["id"]
    out = tmp_path / "alerts.jsonl"
    result = invoke("detect", capture, "--out", out)
    assert result.exit_code == 0, result.output
    assert rule_id in {json.loads(line)["rule"]["id"] for line in out.read_text().splitlines()}


def test_detect_with_bundled_pack_and_suppressions(tmp_path, invoke):
    out = tmp_path / "alerts.jsonl"
    result = invoke("detect", CHAIN, "--format", "auditd", "--out", out)
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(t["id"] == "T1105" for a in alerts for t in a["threat"]["technique"])
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text('- name: curl here\n  rules: ["*"]\n  executable: ["/usr/bin/curl"]\n')
    silenced = tmp_path / "silenced.jsonl"
    result = invoke(
        "detect", CHAIN, "--format", "auditd", "--out", silenced, "--suppressions", exceptions
    )
    assert "suppressed" in result.output
    assert len(silenced.read_text().splitlines()) < len(alerts)


def test_detect_judges_each_act_by_where_it_came_from(tmp_path, invoke):
    """Real recordings (tests/data/lineage): admin and developer work gives no incident with
    the shipped defaults; the same acts from a web shell or a downloaded binary do, and the
    incident says which context kept each signal."""
    quiet = invoke("detect", DATA / "lineage" / "admin-work.ndjson.gz", "--incidents",
                   tmp_path / "quiet.jsonl")  # fmt: skip
    assert quiet.exit_code == 0, quiet.output
    assert "0 incidents" in quiet.output
    assert "lineage context: lowered 1" in quiet.output
    loud = invoke("detect", DATA / "lineage" / "attack-acts.ndjson.gz", "--incidents",
                  tmp_path / "loud.jsonl", "--incident-format", "ocsf")  # fmt: skip
    assert loud.exit_code == 0, loud.output
    findings = [json.loads(line) for line in (tmp_path / "loud.jsonl").read_text().splitlines()]
    assert len(findings) >= 4
    notes = [note for finding in findings for note in finding["unmapped"]["context"]]
    assert any("network-facing server's child" in note for note in notes)
    assert any("downloaded-then-executed file" in note for note in notes)
    assert "context: " in loud.output


def test_detect_takes_its_settings_from_the_configuration_file(tmp_path, invoke):
    events = LAB_ATTACK / "events.ndjson.gz"
    default = invoke("detect", events, "--out", tmp_path / "default.jsonl")
    assert default.exit_code == 0, default.output
    assert "0 incidents" not in default.output
    config = tmp_path / "provarmor.yaml"
    config.write_text("incident:\n  rule: score\n  min_score: 1000000\n")
    strict = invoke("--config", config, "detect", events, "--out", tmp_path / "strict.jsonl")
    assert strict.exit_code == 0, strict.output
    assert "0 incidents (incident when a campaign scores >= 1000000.00, configured" in strict.output


@pytest.mark.parametrize("incident_format", ["json", "ocsf", "svg", "dot"])
def test_detect_writes_incidents_with_an_attack_story(tmp_path, incident_format, invoke):
    target = tmp_path / "incidents"
    result = invoke(
        "detect",
        LAB_ATTACK / "events.ndjson.gz",
        "--out",
        tmp_path / "alerts.jsonl",
        "--incidents",
        target,
        "--incident-format",
        incident_format,
    )
    assert result.exit_code == 0, result.output
    assert "1 incidents" in result.output
    labels = json.loads((LAB_ATTACK / "labels.json").read_text())
    root_pid = labels["attacker_roots"][0]["pid"]
    assert f"[{root_pid}]" in result.output  # the summary names the entry point
    if incident_format == "json":
        (incident,) = [json.loads(line) for line in target.read_text().splitlines()]
        root = next(n for n in incident["nodes"] if n["id"] == incident["root_cause"])
        assert root["pid"] == root_pid
        assert {"T1190", "T1059.004"} <= {t["id"] for t in incident["techniques"]}
        assert incident["steps"] and len(incident["nodes"]) <= 100
    elif incident_format == "ocsf":
        (finding,) = [json.loads(line) for line in target.read_text().splitlines()]
        assert finding["class_uid"] == 2005
    else:
        (drawing,) = target.glob(f"*.{incident_format}")
        assert str(root_pid) in drawing.read_text()


def test_detect_prints_incidents_about_hostile_paths_escaped(
    tmp_path, invoke, assert_no_raw_controls
):
    recording = gzip.decompress((LAB_ATTACK / "events.ndjson.gz").read_bytes())
    hostile = tmp_path / "hostile.ndjson"  # every /tmp path now carries ESC [2J and U+202E
    hostile.write_bytes(recording.replace(b"/tmp/", b"/tmp/\\u001b[2J\\u202e"))

    result = invoke("detect", hostile, "--out", tmp_path / "alerts.jsonl")

    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.output)
    assert "curl wrote /tmp/\\x1b[2J\\u202e" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("setting", "value", "unit"),
    [("detection.dedup_window_seconds", "inf", "seconds"),
     ("investigation.lookback_hours", "nan", "hours")],
)  # fmt: skip
def test_a_duration_no_clock_holds_is_one_line_naming_the_setting(
    tmp_path, run_cli, setting, value, unit
):
    result = run_cli(
        "--set", f"{setting}={value}", "detect", CHAIN, "--out", tmp_path / "alerts.jsonl"
    )
    assert result.returncode == 2, result.stderr
    assert f"error: {setting}: {value} {unit} is out of range" in result.stderr
    assert "Traceback" not in result.stderr


EXPECTED = {
    "SSH password guessing against one account": 1,
    "SSH password spraying across accounts": 2,
    "SSH login after password guessing": 1,
    "sudo refused to a user not in sudoers": 1,
    "sudo password failures": 1,
    "Account created or changed with uid 0": 1,
    "SSH login accepted": 2,
    "Local account created (host log)": 3,
    "SSH login by an account created minutes before": 2,  # hlvictim and hladmin
}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("auth.log", "syslog"),
        ("auth-traditional.log", "syslog"),
        ("auth-rfc5424.log", "syslog"),
        ("journal.json", "journal"),
        ("auth.log", None),
    ],
)
def test_detect_raises_the_host_log_rules_on_real_recordings(name, fmt, tmp_path, invoke):
    recording = tmp_path / name
    shutil.copyfile(DATA / "hostlogs" / name, recording)
    out = tmp_path / "alerts.jsonl"
    args = ["detect", recording, "--out", out]
    if fmt is not None:
        args += ["--format", fmt]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert Counter(alert["rule"]["name"] for alert in alerts) == EXPECTED
    guessed = next(a for a in alerts if a["rule"]["name"] == "SSH login after password guessing")
    assert {t["id"] for t in guessed["threat"]["technique"]} == {"T1110.001", "T1078.003"}
    assert guessed["event"]["count"] == 6  # the 5 failures that made the burst, the login


def test_a_brute_forced_login_is_the_root_cause_of_the_implant_it_ran(tmp_path, invoke):
    # the kernel sensor and the journal recorded together: three connections guessing the
    # password of hljvictim, the login, a dropped and executed /tmp/.hl-implant
    target = tmp_path / "incidents.jsonl"
    out = tmp_path / "alerts.jsonl"
    recording = DATA / "hostlogs" / "login-implant.ndjson.gz"
    result = invoke("detect", recording, "--out", out, "--incidents", target)
    assert result.exit_code == 0, result.output
    # every sshd line names the sensor's process; the script's `logger` line has none
    assert "host logs: 33 of 34 log events joined" in result.output
    (incident,) = [json.loads(line) for line in target.read_text().splitlines()]
    root = next(n for n in incident["nodes"] if n["id"] == incident["root_cause"])
    assert root["role"] == "root_cause"
    assert (root["ip"], root["user"]) == ("10.99.16.1", "hljvictim")
    assert root["label"] == "login of hljvictim from 10.99.16.1 (password) after 9 failed attempts"
    alerts = {
        a["event"]["id"]: a["rule"]["name"] for a in map(json.loads, out.read_text().splitlines())
    }
    rules = {alerts[alert_id] for alert_id in incident["alert_ids"]}
    assert {
        "SSH password guessing against one account",
        "SSH login after password guessing",
        "Hidden program executed from a temporary directory",
    } <= rules
    assert incident["summary"].startswith(
        "The attack entered through the login of hljvictim from 10.99.16.1"
    )
    assert root["label"] not in incident["contacted_endpoints"]
    (step,) = [s for s in incident["steps"] if s["action"] == "login"]
    assert step["object"] == root["id"] and "accepted the login of hljvictim" in step["text"]
