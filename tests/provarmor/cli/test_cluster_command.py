"""``provarmor cluster up`` end to end, all real: nats-server, Debian's PostgreSQL under the
cluster directory, two workers and the manager; a replay enrols and publishes through the
bus credentials enrolment handed it; incidents show through the manager API; a response
command goes out as the manager's bus user and the replayed agent's learned user pulls it
(over TLS too); a worker killed with -9 is started again; ``cluster down`` leaves no process
behind."""

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from provarmor.bus.command_channel import CommandInbox
from provarmor.bus.commands import open_message
from provarmor.bus.credentials import BusAccess
from provarmor.bus.signing import VerifyKey
from provarmor.cli.cluster import stop_recorded
from provarmor.manager.actions import Command
from provarmor.manager.client import ManagerClient
from provarmor.testing.nats import free_port, nats_server_binary, unavailable

ROOT = Path(__file__).parents[3]
LAB = ROOT / "tests" / "data" / "lab" / "nodlink-ubuntu-seed1"
PROVARMOR = [sys.executable, "-m", "provarmor"]


def _postgres_missing() -> str | None:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        return "no Debian PostgreSQL server (scripts/bootstrap.sh dev installs it)"
    if nats_server_binary() is None:
        return "no nats-server binary beside the interpreter or on PATH"
    return None


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """Not under pytest's 0700 tmp folder: the postgres user must pass through to its data."""
    missing = _postgres_missing()
    if missing is not None:
        unavailable(missing)
    base = Path(tempfile.mkdtemp(prefix="provarmor-cluster-test-", dir="/tmp"))
    base.chmod(0o711)
    yield base / "c"
    if (base / "c" / "cluster.json").exists():
        stop_recorded(base / "c")
    shutil.rmtree(base, ignore_errors=True)


def _until(
    check: Callable[[], object], *, what: str, deadline_s: float = 120.0, logs: Path | None = None
) -> object:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {deadline_s:.0f} s: {what}\n{_tails(logs)}")


def _tails(directory: Path | None) -> str:
    """The end of every log of a cluster directory (and of ``cluster up``'s own output)."""
    if directory is None:
        return ""
    files = sorted(directory.glob("logs/*.log")) + sorted(directory.parent.glob("up.err"))
    return "\n".join(f"--- {path}\n{path.read_text(errors='replace')[-3000:]}" for path in files)


def _processes_naming(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(f"{entry.name}: {command}")
    return found


def _state(directory: Path) -> dict:
    return json.loads((directory / "cluster.json").read_text())


@pytest.mark.slow
def _start_up(cluster_dir: Path, *options: str) -> tuple[subprocess.Popen[bytes], Path]:
    """``provarmor [OPTIONS...] cluster up --dir CLUSTER_DIR ...`` started and ready: the
    process (its stdout gives the admin and enrolment tokens) and its log. ``options``: the
    global options, ``--``, then the ``cluster up`` options."""
    split = options.index("--")
    log = cluster_dir.parent / "up.err"
    with log.open("wb") as err:
        up = subprocess.Popen(
            [
                *PROVARMOR,
                *options[:split],
                "cluster",
                "up",
                "--dir",
                str(cluster_dir),
                *options[split + 1 :],
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "COLUMNS": "400"},
        )
    try:
        _until(
            lambda: b"ready:" in log.read_bytes() or up.poll() is not None,
            what="ready",
            logs=cluster_dir,
        )
        assert up.poll() is None, log.read_text()
    except BaseException:
        up.terminate()
        up.wait(timeout=60)
        raise
    return up, log


def _replay(cluster_dir: Path, manager: str, host: str, enrolment: bytes, *options: str) -> dict:
    """The lab recording replayed into the cluster as ``host`` through the enrolment token;
    the replay's saved state (credential and the bus it learned)."""
    state_dir = cluster_dir.parent / "replay"
    replay = subprocess.run(
        [
            *PROVARMOR,
            "replay",
            str(LAB),
            "--manager",
            manager,
            *options,
            "--host-id",
            host,
            "--enroll-token",
            enrolment.decode(),
            "--state-dir",
            str(state_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 0, f"{replay.stderr}\n{_tails(cluster_dir)}"
    state: dict = json.loads(next((state_dir / "replay").glob("*.json")).read_text())
    return state


def test_cluster_up_replay_through_learned_bus_credentials_incidents_and_down(cluster_dir):
    manager_port, bus_port = free_port(), free_port()
    up, log = _start_up(
        cluster_dir,
        "--",
        "--workers",
        "2",
        "--listen",
        f"127.0.0.1:{manager_port}",
        "--bus-listen",
        f"127.0.0.1:{bus_port}",
    )
    try:
        assert up.stdout is not None
        admin, enrolment = up.stdout.readline().strip(), up.stdout.readline().strip()
        assert admin.startswith(b"pa.") and enrolment.startswith(b"pa."), log.read_text()
        manager = f"http://127.0.0.1:{manager_port}"

        saved = _replay(cluster_dir, manager, "cluster-host-1", enrolment)
        assert saved["bus"]["url"] == f"nats://127.0.0.1:{bus_port}"  # learned at enrolment

        headers = {"Authorization": f"Bearer {admin.decode()}"}

        def incidents() -> list:
            answer = httpx.get(f"{manager}/api/v1/incidents", headers=headers, timeout=10)
            assert answer.status_code == 200, answer.text
            return [i for i in answer.json() if i["host_id"] == "cluster-host-1"]

        found = _until(incidents, what="an incident of the replayed host", logs=cluster_dir)
        assert isinstance(found, list)
        assert found[0]["severity"] in ("high", "critical")

        # a response command goes out as the manager's bus user and reaches the replayed
        # host's agent, pulled with the credentials it learned at enrolment
        action = _act(manager, headers, "cluster-host-1")
        client = ManagerClient(manager, saved["credential"])
        try:
            key = VerifyKey.from_text(client.command_key(), location="command key")
        finally:
            client.close()
        access = BusAccess.from_dict(saved["bus"], location="replay state")
        command = asyncio.run(_take_command(access, client.agent_id, key))
        assert (command.id, command.request.kind.value) == (action, "quarantine")

        # a worker killed with -9 is started again, counted
        worker = next(p for p in _state(cluster_dir)["parts"] if p["name"] == "worker-1")
        os.kill(worker["pid"], signal.SIGKILL)

        def worker_1_again() -> dict | None:
            parts = _state(cluster_dir)["parts"]
            return next((p for p in parts if p["name"] == "worker-1" and p["restarts"]), None)

        restarted = _until(worker_1_again, what="worker-1 restarted", deadline_s=30)
        assert isinstance(restarted, dict)
        assert restarted["pid"] != worker["pid"]
        status = subprocess.run(
            [*PROVARMOR, "cluster", "status", "--dir", str(cluster_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        assert "running" in status.stderr
        assert "restarts 1" in status.stderr
        assert "exited with code -9" in (cluster_dir / "cluster.log").read_text()

        pids = [p["pid"] for p in _state(cluster_dir)["parts"]] + [up.pid]
        down = subprocess.run(
            [*PROVARMOR, "cluster", "down", "--dir", str(cluster_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=60) == 0, log.read_text()
        assert "restarts: {'worker-1': 1}" in " ".join(log.read_text().split())
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
        assert _processes_naming(str(cluster_dir)) == [], _tails(cluster_dir)
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=60)
        if up.stdout is not None:
            up.stdout.close()


def _act(manager: str, headers: dict[str, str], host: str) -> str:
    """Propose and execute a quarantine on ``host``; its action id."""
    target = {"type": "file", "path": "/nonexistent/provarmor-cluster-test"}
    answer = httpx.post(
        f"{manager}/api/v1/actions",
        json={"kind": "quarantine", "target": target, "host_id": host},
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    action: str = answer.json()["id"]
    answer = httpx.post(
        f"{manager}/api/v1/actions/{action}/execute", json={}, headers=headers, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return action


async def _take_command(access: BusAccess, agent_id: str, key: VerifyKey) -> Command:
    """The agent's waiting command, checked against the manager's key and acknowledged."""
    inbox = CommandInbox(access.url, agent_id, credentials=access.credentials)
    try:
        (got,) = await inbox.fetch(wait_s=5.0)
        opened = open_message(
            got.headers, got.data, agent_id=agent_id, trusted=key, location=got.subject
        )
        await got.ack_sync()
        return msgspec.json.decode(opened.body, type=Command)
    finally:
        await inbox.close()


async def _waiting(access: BusAccess, agent_id: str, ca: Path) -> int:
    inbox = CommandInbox(access.url, agent_id, credentials=access.credentials, ca_file=ca)
    try:
        return len(await inbox.fetch(wait_s=0.5))
    finally:
        await inbox.close()


def _zombie(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


def test_up_refuses_another_worker_count_for_an_existing_bus(cluster_dir, run_cli):
    cluster_dir.mkdir()
    (cluster_dir / "cluster.json").write_text(json.dumps({"version": 1, "partitions": 3}))
    done = run_cli("cluster", "up", "--dir", cluster_dir, "--workers", "2", columns=400)
    assert done.returncode == 2
    assert "this cluster's bus has 3 partitions" in done.stderr
    assert "--partitions 3" in done.stderr


@pytest.mark.slow
def test_cluster_over_tls_with_claiming_workers_serves_an_agent_that_trusts_its_ca(cluster_dir):
    manager_port, bus_port = free_port(), free_port()
    up, log = _start_up(
        cluster_dir,
        "--set",
        "cluster.claim_partitions=true",
        "--",
        "--workers",
        "1",
        "--partitions",
        "2",
        "--tls",
        "--listen",
        f"127.0.0.1:{manager_port}",
        "--bus-listen",
        f"127.0.0.1:{bus_port}",
    )
    try:
        assert up.stdout is not None
        admin, enrolment = up.stdout.readline().strip(), up.stdout.readline().strip()
        ca = cluster_dir / "tls" / "ca.pem"
        assert f"--ca {ca}" in " ".join(log.read_text().split())
        manager = f"https://127.0.0.1:{manager_port}"
        saved = _replay(cluster_dir, manager, "tls-host", enrolment, "--ca", str(ca))
        assert saved["bus"]["url"] == f"tls://127.0.0.1:{bus_port}"
        # the manager made the agent's command consumer at enrolment, over TLS as its own
        # user: the agent binds to it (none waiting) instead of being told to wait
        access = BusAccess.from_dict(saved["bus"], location="replay state")
        agent_id = access.credentials.inbox.removeprefix("_INBOX.")
        assert asyncio.run(_waiting(access, agent_id, ca)) == 0, _tails(cluster_dir)

        def incidents() -> list:
            answer = httpx.get(
                f"{manager}/api/v1/incidents",
                headers={"Authorization": f"Bearer {admin.decode()}"},
                verify=ssl.create_default_context(cafile=str(ca)),
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            return [i for i in answer.json() if i["host_id"] == "tls-host"]

        _until(incidents, what="an incident of the replayed host", logs=cluster_dir)
        worker_log = (cluster_dir / "logs" / "worker-0.log").read_text()
        assert "partition 0 claimed" in worker_log, _tails(cluster_dir)
        assert "partition 1 claimed" in worker_log, _tails(cluster_dir)
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            assert up.wait(timeout=120) == 0, _tails(cluster_dir)
        if up.stdout is not None:
            up.stdout.close()
    assert _processes_naming(str(cluster_dir)) == [], _tails(cluster_dir)


def test_up_refuses_while_parts_of_a_killed_supervisor_still_run(cluster_dir, run_cli):
    cluster_dir.mkdir()
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = {"version": 1, "supervisor": 0, "parts": [{"name": "bus", "pid": orphan.pid}]}
        (cluster_dir / "cluster.json").write_text(json.dumps(state))
        done = run_cli("cluster", "up", "--dir", cluster_dir, columns=400)
        assert done.returncode == 2
        assert f"parts of an earlier run still run: bus (pid {orphan.pid})" in done.stderr
        assert "provarmor cluster down --dir" in done.stderr
    finally:
        orphan.kill()
        orphan.wait()
