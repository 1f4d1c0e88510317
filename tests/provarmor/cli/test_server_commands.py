import dataclasses
import gzip
import json
import os
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from typer.testing import CliRunner

from provarmor.cli.app import app
from provarmor.cli.server_commands import server_app
from provarmor.detection.suppress import parse_suppressions
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.exceptions import (
    AuditEntry,
    Conditions,
    ExceptionRecord,
    ExceptionScope,
    ExceptionState,
)
from provarmor.manager.routes.tokens import create_token

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
RECON_RULE = "a1155165-189f-4aba-8d35-16d9d7dec416"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    open_findings_store(db).close()  # the manager made its database on its first start
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


def test_plain_http_on_a_non_loopback_address_is_refused(tmp_path):
    state = tmp_path / "state"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "provarmor",
            "server",
            "--listen",
            f"0.0.0.0:{free_port()}",
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "without TLS" in message
    assert "--insecure-no-tls" in message
    assert not state.exists()  # refused before anything was made


def test_token_list_and_revoke(tmp_path):
    db = f"sqlite:///{tmp_path / 'm.db'}"
    open_findings_store(db).close()  # token commands refuse a store that does not exist
    runner = CliRunner()
    made = runner.invoke(
        server_app, ["token", "create", "--role", "admin", "--label", "ops", "--db", db]
    )
    assert made.exit_code == 0, made.output
    token_id = made.output.strip().split(".")[1]
    never = runner.invoke(server_app, ["token", "create", "--valid-days", "0", "--db", db])
    assert never.exit_code == 0, never.output
    listed = runner.invoke(server_app, ["token", "list", "--json", "--db", db])
    assert listed.exit_code == 0, listed.output
    rows = {row["id"]: row for row in json.loads(listed.output)}
    assert rows[token_id]["role"] == "admin"
    assert rows[token_id]["label"] == "ops"
    assert rows[token_id]["expires_ns"] > 0  # the default lifetime
    assert rows[never.output.strip().split(".")[1]]["expires_ns"] == 0
    assert rows[token_id]["last_used_ns"] == 0
    assert rows[token_id]["revoked_ns"] == 0
    table = runner.invoke(server_app, ["token", "list", "--db", db])
    assert token_id in table.output
    assert "never used" in table.output
    revoked = runner.invoke(server_app, ["token", "revoke", token_id, "--db", db])
    assert revoked.exit_code == 0, revoked.output
    listed = runner.invoke(server_app, ["token", "list", "--json", "--db", db])
    assert {row["id"]: row for row in json.loads(listed.output)}[token_id]["revoked_ns"] > 0
    again = runner.invoke(server_app, ["token", "revoke", "0123456789abcdef", "--db", db])
    assert again.exit_code != 0


@pytest.fixture
def own_namespace():
    """A network namespace of this test's own, its loopback up and holding 10.200.0.1 (an
    address that is not loopback, reachable from inside the namespace only)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a network namespace needs root and iproute2")
    name = f"pa-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        inside = ["ip", "netns", "exec", name]
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([*inside, "ip", "addr", "add", "10.200.0.1/32", "dev", "lo"], check=True)
        yield inside
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_forced_plain_http_on_a_non_loopback_address_serves_with_a_warning(own_namespace, tmp_path):
    server = subprocess.Popen(
        [
            *own_namespace,
            sys.executable,
            "-m",
            "provarmor",
            "server",
            "--listen",
            "10.200.0.1:8443",
            "--state-dir",
            str(tmp_path / "state"),
            "--insecure-no-tls",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        probe = [
            sys.executable,
            "-c",
            "import httpx; print(httpx.get("
            "'http://10.200.0.1:8443/healthz', timeout=2).json()['status'])",
        ]
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and server.poll() is None:
            answer = subprocess.run([*own_namespace, *probe], capture_output=True, text=True)
            if answer.returncode == 0:
                break
            time.sleep(0.2)
        assert answer is not None and answer.stdout.strip() == "ok", answer
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    message = " ".join(stderr.split())
    assert "warning: listening on 10.200.0.1 without TLS (--insecure-no-tls)" in message


def _made_by_up(state_dir):
    """A manager store where ``provarmor up --state-dir STATE_DIR`` keeps it, with an admin."""
    store = open_findings_store(f"sqlite:///{state_dir / 'manager' / 'manager.db'}")
    try:
        return create_token(store, role=Role.ADMIN, label="provarmor up login").token
    finally:
        store.close()


def _token_ids(database):
    with sqlite3.connect(database) as db_file:
        return {row[0] for row in db_file.execute("SELECT id FROM tokens")}


@pytest.mark.parametrize("command", [["token", "create"], ["enrollment-token"]])
def test_token_commands_find_the_store_of_up_in_its_state_directory(tmp_path, command):
    _made_by_up(tmp_path)
    made = CliRunner().invoke(server_app, [*command, "--state-dir", str(tmp_path)])
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    assert token.split(".")[1] in _token_ids(tmp_path / "manager" / "manager.db")
    assert not (tmp_path / "manager.db").exists()


@pytest.mark.parametrize("command", [["token", "create"], ["enrollment-token"]])
def test_token_commands_refuse_a_directory_without_a_manager_database(tmp_path, command):
    result = subprocess.run(
        [sys.executable, "-m", "provarmor", "server", *command, "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2
    assert "no manager database here" in result.stderr
    assert str(tmp_path / "manager.db") in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_server_serves_the_store_of_up_from_its_state_directory(tmp_path):
    token = _made_by_up(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            *[sys.executable, "-m", "provarmor", "server", "--state-dir", str(tmp_path)],
            *["--listen", f"127.0.0.1:{port}"],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        answer = None
        deadline = time.monotonic() + 60
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/hosts",
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "first start" not in output
    assert not (tmp_path / "manager.db").exists()


def test_the_servers_detection_kit_takes_the_configured_analysis_settings():
    from provarmor.cli import config_command
    from provarmor.cli.server_commands import detection_kit
    from provarmor.manager.settings import ManagerSettings

    overrides = ["incident.rule=score", "incident.min_score=5", "learning.enabled=false"]
    config_command.set_options(config=None, overrides=overrides)
    try:
        kit = detection_kit(ManagerSettings())
    finally:
        config_command.set_options(config=None, overrides=None)
    assert (kit.config.incident.rule, kit.config.incident.min_score) == ("score", 5.0)
    assert kit.learning is None


def _serving(state: Path, port: int, tls) -> subprocess.Popen:
    """``provarmor server`` over HTTPS on ``port``, once it answers."""
    trust = ssl.create_default_context(cafile=str(tls.ca_cert))
    with (state / "server.log").open("ab") as log:
        server = subprocess.Popen(
            [
                *[sys.executable, "-m", "provarmor", "server", "--state-dir", str(state)],
                *["--db", f"sqlite:///{state / 'manager.db'}", "--listen", f"127.0.0.1:{port}"],
                *["--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key)],
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, (state / "server.log").read_text()
        assert time.monotonic() < deadline, (state / "server.log").read_text()
        try:
            httpx.get(f"https://127.0.0.1:{port}/api/v1/hosts", verify=trust)
            return server
        except httpx.TransportError:
            time.sleep(0.1)


def _uploaded_through_a_server(state: Path, tls, *, kill_after: int | None) -> dict:
    """The lab capture uploaded in batches of 150 over the agent's uplink; with
    ``kill_after``, the server is killed (-9) after that many batches and started again.
    Returns the incidents (tag written ``TAG``) and alert ids the store then holds."""
    from provarmor.manager.client import ManagerClient
    from provarmor.manager.store import AlertQuery, IncidentQuery, Page
    from provarmor.model.codec import parse_json_event

    state.mkdir()
    store = open_findings_store(f"sqlite:///{state / 'manager.db'}")
    enrol = create_token(store, role=Role.ENROLL).token
    store.close()
    events = [parse_json_event(line) for line in gzip.decompress(LAB.read_bytes()).splitlines()]
    port = free_port()
    server = _serving(state, port, tls)
    client = ManagerClient(f"https://127.0.0.1:{port}", ca_file=tls.ca_cert)
    try:
        client.enroll(enrol, host_id=LAB_HOST, hostname="lab")
        for number, start in enumerate(range(0, len(events), 150), start=1):
            batch = events[start : start + 150]
            assert client.upload(start + len(batch), batch).acked_sequence == start + len(batch)
            if number == kill_after:
                server.kill()
                server.wait(timeout=10)
                server = _serving(state, port, tls)
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)
    store = open_findings_store(f"sqlite:///{state / 'manager.db'}")
    try:
        rows = store.incidents(IncidentQuery(page=Page(limit=1000)))
        alerts = store.alerts(AlertQuery(page=Page(limit=100_000)))
    finally:
        store.close()
    tags = {row.id.removeprefix(f"{row.engine_id}-") for row in rows}
    return {
        "tags": len(tags),
        "incidents": sorted(
            (row.engine_id, row.version, row.json.replace(next(iter(tags)), "TAG")) for row in rows
        ),
        "alerts": sorted(alert.id for alert in alerts),
    }


@pytest.mark.slow
def test_a_server_killed_mid_attack_goes_on_with_the_same_incidents(tmp_path):
    """The embedded manager keeps each host's detector state: killed (-9) and started again
    in the middle of the attack, it stores the same incident versions and alerts as a server
    that ran through, each once."""
    from provarmor.manager.tls import write_certificates

    tls = write_certificates(tmp_path / "tls", hosts=["127.0.0.1"])
    through = _uploaded_through_a_server(tmp_path / "through", tls, kill_after=None)
    restarted = _uploaded_through_a_server(tmp_path / "restarted", tls, kill_after=7)
    assert through["incidents"], "the lab capture makes an incident"
    assert restarted == through
    assert restarted["tags"] == 1
    assert len(set(restarted["alerts"])) == len(restarted["alerts"])
