import os
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest
from cryptography import x509
from typer.testing import CliRunner

from provarmor.cli.server_commands import server_app
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.routes.tokens import create_token


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
