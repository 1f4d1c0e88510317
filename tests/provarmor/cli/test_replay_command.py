"""A second host over the network: the manager listens on a veth address this test creates;
`provarmor replay` runs inside a network namespace (its own stack), enrols over TLS and
uploads a real lab recording as host ``lab-host-2``; the incident appears in the API. And a
replay killed mid-way resumes as the same agent: every event is stored exactly once."""

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import msgspec
import pytest
import uvicorn

from provarmor.cli.replay_command import ReplayState, state_file
from provarmor.manager.app import create_app
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.settings import ManagerSettings
from provarmor.manager.tls import write_certificates
from provarmor.model.actions import Action
from provarmor.model.codec import encode_ndjson
from provarmor.pipeline.ingest import file_digest
from provarmor.testing.factories import make_event

LAB = Path(__file__).resolve().parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1"
ROOT = Path(__file__).resolve().parents[3]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespace():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    token = secrets.token_hex(3)
    name, host_if, ns_if = f"pa-test-{token}", f"pah{token}", f"pan{token}"
    octet = 16 + secrets.randbelow(200)
    host_ip, ns_ip = f"10.214.{octet}.1", f"10.214.{octet}.2"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _ip("-n", name, "link", "set", ns_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield name, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@pytest.mark.privileged
@pytest.mark.slow
def test_a_second_host_enrols_and_uploads_from_a_namespace(namespace, tmp_path):
    name, host_ip = namespace
    files = write_certificates(tmp_path / "tls", hosts=[host_ip])
    port = _free_port(host_ip)
    settings = ManagerSettings(state_dir=tmp_path / "manager", listen=f"{host_ip}:{port}")
    store = open_findings_store(settings.effective_database_url())
    app = create_app(settings, store)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host_ip,
            port=port,
            ssl_certfile=str(files.server_cert),
            ssl_keyfile=str(files.server_key),
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "manager did not start"
            time.sleep(0.05)
        enrol = create_token(store, role=Role.ENROLL, valid_ns=60 * 10**9).token
        analyst = create_token(store, role=Role.ANALYST).token
        url = f"https://{host_ip}:{port}"
        command = [sys.executable, "-m", "provarmor", "replay", str(LAB)]
        command += ["--manager", url, "--enroll-token", enrol, "--host-id", "lab-host-2"]
        command += ["--ca", str(files.ca_cert), "--state-dir", str(tmp_path / "state")]
        done = subprocess.run(
            ["ip", "netns", "exec", name, *command],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        assert "uploaded 2,142 events as host lab-host-2" in done.stderr
        with httpx.Client(
            base_url=url,
            verify=ssl.create_default_context(cafile=str(files.ca_cert)),
            headers={"Authorization": f"Bearer {analyst}"},
        ) as api:
            hosts = api.get("/api/v1/hosts").json()
            assert "lab-host-2" in str(hosts)
            incidents = api.get("/api/v1/incidents", params={"host": "lab-host-2"}).json()
            assert "inc-" in str(incidents)
        # the namespace has no other route: it reached the manager over the veth pair only
        routes = subprocess.run(
            ["ip", "-n", name, "route"], capture_output=True, text=True, check=True
        ).stdout
        assert "default" not in routes
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.context.ingestor.close()
        store.close()


@pytest.fixture
def local_manager(tmp_path):
    """A real manager on a free loopback port (plain HTTP), in a thread."""
    settings = ManagerSettings(state_dir=tmp_path / "manager")
    store = open_findings_store(settings.effective_database_url())
    app = create_app(settings, store)
    port = _free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "manager did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.context.ingestor.close()
        store.close()


def _stored_events(api: httpx.Client, host_id: str) -> int:
    for host in api.get("/api/v1/hosts").json():
        if host["id"] == host_id:
            return int(host["events"])
    return 0


def test_a_replay_killed_mid_way_resumes_as_the_same_agent(local_manager, tmp_path):
    url, store = local_manager
    recording = tmp_path / "events.ndjson"
    events = [
        make_event(Action.READ, pid=1000 + i // 50, ts=i + 1, path=f"/data/f{i % 700}")
        for i in range(30_000)
    ]
    recording.write_bytes(encode_ndjson(events))
    token = create_token(store, role=Role.ENROLL, valid_ns=60 * 10**9).token
    analyst = create_token(store, role=Role.ANALYST).token
    command = [sys.executable, "-m", "provarmor", "replay", str(recording), "--manager", url]
    command += ["--enroll-token", token, "--host-id", "replayed"]
    command += ["--state-dir", str(tmp_path / "state")]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {analyst}"}) as api:
        with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL) as first:
            deadline = time.monotonic() + 120
            while _stored_events(api, "replayed") == 0:
                assert first.poll() is None, "the replay ended before it could be interrupted"
                assert time.monotonic() < deadline, "nothing was uploaded"
                time.sleep(0.02)
            first.kill()  # SIGKILL, mid-way
        assert 0 < _stored_events(api, "replayed") < len(events)

        # the same command again: the enrolment token is spent, the replay resumes
        again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)

        assert again.returncode == 0, again.stderr
        assert "resuming the replay as agent" in again.stderr
        assert _stored_events(api, "replayed") == len(events)
        hosts = api.get("/api/v1/hosts").json()
        assert [len(h["agents"]) for h in hosts if h["id"] == "replayed"] == [1]
    state = next((tmp_path / "state" / "replay").glob("*.json"))
    assert state.stat().st_mode & 0o777 == 0o600


def test_a_replay_whose_agent_the_manager_does_not_know_is_refused(local_manager, tmp_path):
    url, _store = local_manager
    recording = tmp_path / "events.ndjson"
    recording.write_bytes(encode_ndjson([make_event(Action.READ, ts=1, path="/etc/hosts")]))
    other = open_findings_store(
        ManagerSettings(state_dir=tmp_path / "elsewhere").effective_database_url()
    )
    stranger = create_token(other, role=Role.ANALYST).token  # well formed, unknown here
    other.close()
    digest = file_digest(recording)
    saved = state_file(tmp_path / "state", manager=url, host_id="ghost", digest=digest)
    saved.parent.mkdir(parents=True)
    saved.write_bytes(
        msgspec.json.encode(
            ReplayState(
                manager=url,
                host_id="ghost",
                recording=str(recording),
                digest=digest,
                credential=stranger,
            )
        )
    )
    command = [sys.executable, "-m", "provarmor", "replay", str(recording), "--manager", url]
    command += ["--host-id", "ghost", "--state-dir", str(tmp_path / "state")]

    wide = {**os.environ, "COLUMNS": "400"}  # the message names a long path: keep it whole
    done = subprocess.run(command, cwd=ROOT, env=wide, capture_output=True, text=True, timeout=120)

    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "the manager refused the agent this replay was uploading as" in message
    assert f"delete {saved}" in message


def test_replay_state_of_version_1_reads():
    data = (ROOT / "tests" / "data" / "replay" / "state-v1.json").read_bytes()
    state = msgspec.json.decode(data, type=ReplayState)
    assert (state.version, state.host_id, state.uploaded) == (1, "lab-host-2", 6000)


def test_replay_state_of_version_2_keeps_the_bus_learned_at_enrolment():
    data = (ROOT / "tests" / "data" / "replay" / "state-v2.json").read_bytes()
    state = msgspec.json.decode(data, type=ReplayState)
    assert (state.version, state.uploaded) == (2, 6000)
    assert state.bus is not None
    assert state.bus["url"] == "nats://10.0.0.1:4222"
