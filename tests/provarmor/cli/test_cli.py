"""The command line end to end on real fixtures (in-process through Typer's runner)."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provarmor.cli.app import app
from provarmor.model.actions import Action
from provarmor.model.codec import encode_ndjson
from provarmor.testing.factories import make_event

DATA = Path(__file__).resolve().parents[2] / "data"
CHAIN = DATA / "auditd" / "attack_chain.log"
runner = CliRunner(env={"COLUMNS": "200"})


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "g.db"
    result = invoke("ingest", CHAIN, "--format", "auditd", "--db", path, "--host", "vm1")
    assert result.exit_code == 0, result.output
    return path


def test_ingest_reports_counts_and_is_idempotent(db):
    again = invoke("ingest", CHAIN, "--format", "auditd", "--db", db)
    assert "already ingested" in again.output


def test_stats_lists_node_kinds_and_actions(db):
    output = invoke("stats", "--db", db).output
    assert "process nodes" in output
    assert "exec events" in output


def test_trace_backward_from_the_payload_connect_is_the_chain(db):
    # the last connect of the recording is the payload's call-back
    from provarmor.storage.sqlite_graph import SqliteGraphStore

    store = SqliteGraphStore(db)
    connect = store.last_edge(action="connect")
    store.close()
    assert connect is not None
    result = invoke("trace", connect.last_event, "--backward", "--json", "--db", db)
    data = json.loads(result.output)
    labels = {node["label"] for node in data["nodes"]}
    assert "/tmp/x/payload" in labels
    assert any(label.endswith("/curl") for label in labels)
    assert any(label.endswith("/chmod") for label in labels)
    actions = sorted(edge["action"] for edge in data["edges"])
    for needed in ("connect", "exec", "create", "chmod", "recv"):
        assert needed in actions
    dot = invoke("trace", connect.last_event, "--dot", "--db", db).output
    assert dot.startswith("digraph")


def test_trace_ambiguous_text_lists_candidates(db):
    result = invoke("trace", "127.0.0.1", "--db", db)
    assert result.exit_code == 1
    assert "entities match" in result.output


def test_trace_a_file_path_traces_that_file_though_command_lines_name_it(db):
    result = invoke("trace", "/tmp/x/payload", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    start = next(node for node in data["nodes"] if node["id"] == data["start"])
    assert (start["kind"], start["path"]) == ("file", "/tmp/x/payload")
    assert any(label.endswith("/curl") for label in (n["label"] for n in data["nodes"]))


def _cli(*args, columns=40):
    return subprocess.run(
        [sys.executable, "-m", "provarmor", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def test_trace_ambiguity_lists_every_full_id_on_a_narrow_terminal(db):
    from provarmor.storage.sqlite_graph import SqliteGraphStore

    store = SqliteGraphStore(db)
    candidates = [node.id for node in store.find_nodes("127.0.0.1")]
    store.close()
    assert len(candidates) > 1
    result = _cli("trace", "127.0.0.1", "--db", db, columns=40)
    assert result.returncode == 1
    first_fields = {line.split("\t")[0] for line in result.stdout.splitlines()}
    assert set(candidates) <= first_fields, result.stdout


def test_trace_json_is_json_for_ambiguity_and_errors(db):
    ambiguous = _cli("trace", "127.0.0.1", "--json", "--db", db)
    assert ambiguous.returncode == 1
    document = json.loads(ambiguous.stdout)
    assert "entities match" in document["error"]
    assert all({"id", "kind", "caption"} <= set(c) for c in document["candidates"])
    missing = _cli("trace", "no-such-thing", "--json", "--db", db)
    assert missing.returncode == 2
    assert json.loads(missing.stdout) == {"error": "no event or entity matches 'no-such-thing'"}


def test_ingest_and_detect_tell_the_format_from_the_content(tmp_path):
    result = invoke("ingest", CHAIN, "--db", tmp_path / "g.db")
    assert result.exit_code == 0, result.output
    stats = invoke("stats", "--db", tmp_path / "g.db").output
    assert "exec events" in stats
    out = tmp_path / "alerts.jsonl"
    detected = invoke("detect", CHAIN, "--out", out)
    assert detected.exit_code == 0, detected.output
    assert out.read_text().strip()


def test_ingest_refuses_content_it_cannot_tell_without_format(tmp_path):
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\nworld\n")
    result = _cli("ingest", unknown, "--db", tmp_path / "g.db", columns=200)
    assert result.returncode == 2
    assert "cannot tell the format" in result.stderr and "--format" in result.stderr
    assert not (tmp_path / "g.db").exists()


def test_errors_are_one_clear_line_without_traceback(db):
    result = subprocess.run(
        [sys.executable, "-m", "provarmor", "trace", "no-such-thing", "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "error: no event or entity matches 'no-such-thing'" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_and_convert(db, tmp_path):
    out = tmp_path / "graph.jsonl"
    invoke("export", "--db", db, "--out", out)
    kinds = {json.loads(line)["type"] for line in out.read_text().splitlines()}
    assert kinds == {"node", "edge"}
    converted = tmp_path / "events.ndjson"
    result = invoke("convert", CHAIN, "--format", "auditd", "--out", converted)
    assert "wrote" in result.output
    first = json.loads(converted.read_text().splitlines()[0])
    assert first["event"]["dataset"] == "auditd"


def test_bad_input_file_is_reported_not_raised(tmp_path):
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b'{"half": \n\x00\x01\x02\n')
    result = invoke("ingest", bad, "--format", "ndjson", "--db", tmp_path / "x.db")
    assert result.exit_code == 1  # reported, no traceback; every record rejected: exit 1
    assert "rejected" in result.output
    assert f"{bad}:1" in result.output.replace("\n", "")


def test_demo_runs_on_the_bundled_sample(tmp_path):
    result = invoke("demo", "--db", tmp_path / "demo.db")
    assert result.exit_code == 0, result.output
    assert "root cause of the last outbound connection" in result.output
    assert "/tmp/x/payload" in result.output
    assert "1 incidents" in result.output
    assert "is the entry point" in result.output
    svg = tmp_path / "demo-incident.svg"
    assert svg.read_text().startswith("<?xml") or "<svg" in svg.read_text()[:200]


def test_detect_emits_attack_tagged_alerts(tmp_path, shared_data):
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


def test_rules_check_reports_fraction(shared_data):
    result = invoke("rules", "check", shared_data / "sigma")
    assert "248/248 loaded (100.0 %)" in result.output  # host-log services included


def test_detect_with_bundled_pack_and_suppressions(tmp_path):
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


LAB_ATTACK = Path(__file__).resolve().parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1"


def test_detect_judges_each_act_by_where_it_came_from(tmp_path):
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


@pytest.mark.parametrize("incident_format", ["json", "ocsf", "svg", "dot"])
def test_detect_writes_incidents_with_an_attack_story(tmp_path, incident_format):
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


def test_wrong_format_exits_non_zero_and_leaves_the_file_to_the_right_one(tmp_path):
    db = tmp_path / "g.db"
    wrong = invoke("ingest", CHAIN, "--format", "ndjson", "--db", db)
    assert wrong.exit_code == 1
    assert "every record was rejected" in wrong.output
    assert str(CHAIN) in wrong.output

    right = invoke("ingest", CHAIN, "--format", "auditd", "--db", db)
    assert right.exit_code == 0, right.output
    assert "already ingested" not in right.output
    assert "exec events" in invoke("stats", "--db", db).output


HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[8m\u202etxt.exe\x9b31m\r"
RAW = ("\x1b", "\x07", "\u202e", "\x9b", "\r")


def _hostile_db(tmp_path):
    """Real events whose paths and command lines carry terminal escapes and a bidi
    override, ingested through the CLI."""
    dropper = f"/tmp/{HOSTILE}drop"
    events = [
        make_event(Action.EXEC, pid=7, ts=1, exe=dropper, args=(dropper, f"--x={HOSTILE}")),
        make_event(Action.WRITE, pid=7, ts=2, exe=dropper, path=f"/tmp/loot{HOSTILE}"),
        make_event(Action.WRITE, pid=7, ts=3, exe=dropper, path=f"/tmp/loot2{HOSTILE}"),
    ]
    source = tmp_path / f"events{HOSTILE}.ndjson"
    source.write_bytes(encode_ndjson(events))
    db = tmp_path / "g.db"
    result = invoke("ingest", source, "--format", "ndjson", "--db", db)
    assert result.exit_code == 0, result.output
    return db, result.output


def _no_raw_controls(output: str) -> None:
    for char in RAW:
        assert char not in output, f"{char!r} reached the terminal"


def test_host_data_reaches_the_terminal_escaped_and_json_stays_exact(tmp_path):
    db, ingest_output = _hostile_db(tmp_path)
    _no_raw_controls(ingest_output)

    tree = invoke("trace", "/tmp/loot2", "--db", db, "--forward")  # unique: one file node
    assert tree.exit_code == 0, tree.output
    _no_raw_controls(tree.output)
    assert "\\x1b]0;owned\\x07" in tree.output.replace("\n", "")

    ambiguous = invoke("trace", "loot", "--db", db)  # two matches: the table of both
    _no_raw_controls(ambiguous.output)
    assert "\\u202etxt.exe" in ambiguous.output.replace("\n", "")

    dot = invoke("trace", "/tmp/loot2", "--db", db, "--forward", "--dot").output
    _no_raw_controls(dot)
    for line in dot.splitlines()[2:-1]:  # every statement: quoted strings stay closed
        assert line.replace('\\"', "").count('"') % 2 == 0, line

    _no_raw_controls(invoke("stats", "--db", db).output)
    missing = subprocess.run(  # errors are printed by the entry point: a real process
        [sys.executable, "-m", "provarmor", "trace", f"nothing{HOSTILE}", "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "no event or entity matches" in missing.stderr
    _no_raw_controls(missing.stderr)

    exact = json.loads(invoke("trace", "/tmp/loot2", "--db", db, "--forward", "--json").output)
    assert f"/tmp/loot2{HOSTILE}" in [node["path"] for node in exact["nodes"]]


def test_detect_prints_incidents_about_hostile_paths_escaped(tmp_path):
    recording = gzip.decompress((LAB_ATTACK / "events.ndjson.gz").read_bytes())
    hostile = tmp_path / "hostile.ndjson"  # every /tmp path now carries ESC [2J and U+202E
    hostile.write_bytes(recording.replace(b"/tmp/", b"/tmp/\\u001b[2J\\u202e"))

    result = invoke("detect", hostile, "--out", tmp_path / "alerts.jsonl")

    assert result.exit_code == 0, result.output
    _no_raw_controls(result.output)
    assert "curl wrote /tmp/\\x1b[2J\\u202e" in " ".join(result.output.split())
