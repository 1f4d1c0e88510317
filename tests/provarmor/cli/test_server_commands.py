import dataclasses
import json
import sqlite3
from pathlib import Path

from cryptography import x509
from typer.testing import CliRunner

from provarmor.cli.app import app
from provarmor.cli.server_commands import server_app
from provarmor.detection.suppress import parse_suppressions
from provarmor.manager.database import open_findings_store
from provarmor.manager.exceptions import (
    AuditEntry,
    Conditions,
    ExceptionRecord,
    ExceptionScope,
    ExceptionState,
)

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
RECON_RULE = "a1155165-189f-4aba-8d35-16d9d7dec416"


def test_certs_make_a_ca_and_a_server_certificate_for_the_host(tmp_path):
    result = CliRunner().invoke(
        server_app, ["certs", "--out", str(tmp_path), "--host", "127.0.0.1"]
    )
    assert result.exit_code == 0, result.output
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    assert server.issuer == ca.subject
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (tmp_path / "server-key.pem").stat().st_mode & 0o777 == 0o600


def test_token_and_enrollment_token_are_printed_and_stored_hashed(tmp_path):
    db = f"sqlite:///{tmp_path / 'm.db'}"
    runner = CliRunner()
    made = runner.invoke(server_app, ["token", "create", "--role", "analyst", "--db", db])
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    assert token.startswith("pa.")
    enrol = runner.invoke(server_app, ["enrollment-token", "--db", db, "--valid-seconds", "60"])
    assert enrol.exit_code == 0, enrol.output
    with sqlite3.connect(tmp_path / "m.db") as db_file:
        rows = db_file.execute("SELECT id, role, digest FROM tokens ORDER BY role").fetchall()
    assert [row[1] for row in rows] == ["analyst", "enroll"]
    assert token.split(".")[1] == rows[0][0]
    assert token.split(".")[2] not in {row[2] for row in rows}


def test_exported_exceptions_filter_provarmor_detect(tmp_path):
    """An exception confirmed on the manager, exported by the CLI, silences the same alerts
    when `provarmor detect --suppressions` replays the real lab capture."""
    db = f"sqlite:///{tmp_path / 'm.db'}"
    store = open_findings_store(db)
    proposal = ExceptionRecord(
        id="exc-recon",
        state=ExceptionState.PROPOSED,
        scope=ExceptionScope.FLEET,
        host="",
        conditions=Conditions(
            rules=(RECON_RULE,),
            executables=("/usr/bin/id", "/usr/bin/whoami"),
            lineage=("/bin/sh", "/root/.pyenv/versions/*/bin/python3.11"),
        ),
        reason="the web app's health check",
        source="incident:inc-c1-test",
        created_ns=1,
        created_by="0123456789abcdef",
        updated_ns=1,
    )
    entry = AuditEntry(
        exception_id="exc-recon",
        ts_ns=1,
        author="a",
        action="proposed",
        reason="",
        state="proposed",
    )
    store.add_exception(proposal, audit=entry)
    active = dataclasses.replace(proposal, state=ExceptionState.ACTIVE, updated_ns=2)
    store.update_exception(active, audit=dataclasses.replace(entry, action="confirmed", ts_ns=2))
    store.close()
    exported = tmp_path / "exceptions.yaml"
    runner = CliRunner(env={"COLUMNS": "200"})
    made = runner.invoke(server_app, ["exceptions", "export", "--db", db, "--out", str(exported)])
    assert made.exit_code == 0, made.output
    (suppression,) = parse_suppressions(exported.read_text(), source=str(exported))
    assert suppression.name == "exc-recon" and suppression.reason == "the web app's health check"

    def detect(*extra: str) -> tuple[list[dict], str]:
        out = tmp_path / f"alerts{len(extra)}.jsonl"
        args = ["detect", str(LAB), "--out", str(out), "--host", LAB_HOST, *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in out.read_text().splitlines()], result.output

    plain, _ = detect()
    filtered, output = detect("--suppressions", str(exported))
    recon = [a for a in plain if a["rule"]["id"] == RECON_RULE]
    assert len(recon) == 2
    assert len(filtered) == len(plain) - 2
    assert all(a["rule"]["id"] != RECON_RULE for a in filtered)
    assert "suppressed 2 alerts by exceptions" in output
