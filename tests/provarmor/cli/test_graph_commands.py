"""``ingest``, ``convert``, ``stats``, ``trace`` and ``export`` end to end on real fixtures
(in-process through Typer's runner, or as real ``python -m provarmor`` processes where the
terminal width or the entry point's error printing matters)."""

import json
from pathlib import Path

import pytest

from provarmor.model.actions import Action
from provarmor.model.codec import encode_ndjson
from provarmor.storage.sqlite_graph import SqliteGraphStore
from provarmor.testing.factories import make_event

CHAIN = Path(__file__).resolve().parents[2] / "data" / "auditd" / "attack_chain.log"


@pytest.fixture
def db(tmp_path, invoke):
    path = tmp_path / "g.db"
    result = invoke("ingest", CHAIN, "--format", "auditd", "--db", path, "--host", "vm1")
    assert result.exit_code == 0, result.output
    return path


def test_ingest_reports_counts_and_is_idempotent(db, invoke):
    again = invoke("ingest", CHAIN, "--format", "auditd", "--db", db)
    assert "already ingested" in again.output


def test_stats_lists_node_kinds_and_actions(db, invoke):
    output = invoke("stats", "--db", db).output
    assert "process nodes" in output
    assert "exec events" in output


def test_trace_backward_from_the_payload_connect_is_the_chain(db, invoke):
    # the last connect of the recording is the payload's call-back
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


def test_trace_ambiguous_text_lists_candidates(db, invoke):
    result = invoke("trace", "127.0.0.1", "--db", db)
    assert result.exit_code == 1
    assert "entities match" in result.output


def test_trace_a_file_path_traces_that_file_though_command_lines_name_it(db, invoke):
    result = invoke("trace", "/tmp/x/payload", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    start = next(node for node in data["nodes"] if node["id"] == data["start"])
    assert (start["kind"], start["path"]) == ("file", "/tmp/x/payload")
    assert any(label.endswith("/curl") for label in (n["label"] for n in data["nodes"]))


def test_trace_ambiguity_lists_every_full_id_on_a_narrow_terminal(db, run_cli):
    store = SqliteGraphStore(db)
    candidates = [node.id for node in store.find_nodes("127.0.0.1")]
    store.close()
    assert len(candidates) > 1
    result = run_cli("trace", "127.0.0.1", "--db", db, columns=40)
    assert result.returncode == 1
    first_fields = {line.split("\t")[0] for line in result.stdout.splitlines()}
    assert set(candidates) <= first_fields, result.stdout


def test_trace_json_is_json_for_ambiguity_and_errors(db, run_cli):
    ambiguous = run_cli("trace", "127.0.0.1", "--json", "--db", db, columns=40)
    assert ambiguous.returncode == 1
    document = json.loads(ambiguous.stdout)
    assert "entities match" in document["error"]
    assert all({"id", "kind", "caption"} <= set(c) for c in document["candidates"])
    missing = run_cli("trace", "no-such-thing", "--json", "--db", db, columns=40)
    assert missing.returncode == 2
    assert json.loads(missing.stdout) == {"error": "no event or entity matches 'no-such-thing'"}


def test_ingest_refuses_content_it_cannot_tell_without_format(tmp_path, run_cli):
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\nworld\n")
    result = run_cli("ingest", unknown, "--db", tmp_path / "g.db", columns=200)
    assert result.returncode == 2
    assert "cannot tell the format" in result.stderr and "--format" in result.stderr
    assert not (tmp_path / "g.db").exists()


def test_errors_are_one_clear_line_without_traceback(db, run_cli):
    result = run_cli("trace", "no-such-thing", "--db", db, columns=80)
    assert result.returncode == 2
    assert "error: no event or entity matches 'no-such-thing'" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_and_convert(db, tmp_path, invoke):
    out = tmp_path / "graph.jsonl"
    invoke("export", "--db", db, "--out", out)
    kinds = {json.loads(line)["type"] for line in out.read_text().splitlines()}
    assert kinds == {"node", "edge"}
    converted = tmp_path / "events.ndjson"
    result = invoke("convert", CHAIN, "--format", "auditd", "--out", converted)
    assert "wrote" in result.output
    first = json.loads(converted.read_text().splitlines()[0])
    assert first["event"]["dataset"] == "auditd"


def test_bad_input_file_is_reported_not_raised(tmp_path, invoke):
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b'{"half": \n\x00\x01\x02\n')
    result = invoke("ingest", bad, "--format", "ndjson", "--db", tmp_path / "x.db")
    assert result.exit_code == 1  # reported, no traceback; every record rejected: exit 1
    assert "rejected" in result.output
    assert f"{bad}:1" in result.output.replace("\n", "")


def test_wrong_format_exits_non_zero_and_leaves_the_file_to_the_right_one(tmp_path, invoke):
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


def _hostile_db(tmp_path, invoke):
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


def test_host_data_reaches_the_terminal_escaped_and_json_stays_exact(
    tmp_path, invoke, run_cli, assert_no_raw_controls
):
    db, ingest_output = _hostile_db(tmp_path, invoke)
    assert_no_raw_controls(ingest_output)

    tree = invoke("trace", "/tmp/loot2", "--db", db, "--forward")  # unique: one file node
    assert tree.exit_code == 0, tree.output
    assert_no_raw_controls(tree.output)
    assert "\\x1b]0;owned\\x07" in tree.output.replace("\n", "")

    ambiguous = invoke("trace", "loot", "--db", db)  # two matches: the table of both
    assert_no_raw_controls(ambiguous.output)
    assert "\\u202etxt.exe" in ambiguous.output.replace("\n", "")

    dot = invoke("trace", "/tmp/loot2", "--db", db, "--forward", "--dot").output
    assert_no_raw_controls(dot)
    for line in dot.splitlines()[2:-1]:  # every statement: quoted strings stay closed
        assert line.replace('\\"', "").count('"') % 2 == 0, line

    assert_no_raw_controls(invoke("stats", "--db", db).output)
    # errors are printed by the entry point: a real process
    missing = run_cli("trace", f"nothing{HOSTILE}", "--db", db, columns=80)
    assert missing.returncode == 2
    assert "no event or entity matches" in missing.stderr
    assert_no_raw_controls(missing.stderr)

    exact = json.loads(invoke("trace", "/tmp/loot2", "--db", db, "--forward", "--json").output)
    assert f"/tmp/loot2{HOSTILE}" in [node["path"] for node in exact["nodes"]]
