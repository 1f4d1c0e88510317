"""The real agent on this machine's kernel: start it, run real commands, stop it, and find
the exact events with correct lineage, paths, argv and addresses, for each backend."""

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from provarmor.agent.runner import Agent
from provarmor.agent.settings import AgentSettings, SensorChoice
from provarmor.sources.base import SensorUnavailable
from provarmor.sources.registry import SENSORS

pytestmark = [pytest.mark.privileged, pytest.mark.slow]


def _serve():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _workload(tmp):
    server = _serve()
    port = server.server_address[1]
    subprocess.run(["sh", "-c", "cat /etc/hostname | wc -c"], check=True, capture_output=True)
    subprocess.run(["curl", "-s", "-o", str(tmp / "page"), f"http://127.0.0.1:{port}/"], check=True)
    subprocess.run(["cp", "/etc/hostname", str(tmp / "a")], check=True)
    subprocess.run(["chmod", "640", str(tmp / "a")], check=True)
    subprocess.run(["mv", str(tmp / "a"), str(tmp / "b")], check=True)
    subprocess.run(["rm", str(tmp / "b")], check=True)
    client = (
        "import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1]))); "
        "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); s.recv(100); s.close()"
    )
    subprocess.run([sys.executable, "-c", client, str(port)], check=True)
    time.sleep(1.0)
    server.shutdown()
    server.server_close()
    return port


@pytest.mark.parametrize("backend", ["ebpf", "audit"])
def test_agent_captures_real_commands_with_lineage(tmp_path, backend):
    if os.geteuid() != 0:
        pytest.skip("the agent needs root")
    assert backend in SENSORS
    if backend == "ebpf" and shutil.which("bpftrace") is None:
        pytest.skip("bpftrace is not installed (scripts/bootstrap.sh dev installs it)")
    out = tmp_path / "events.ndjson"
    work = tmp_path / "work"
    work.mkdir()
    settings = AgentSettings(
        sensor=SensorChoice(backend), state_dir=tmp_path / "state", status_interval_seconds=0.5
    )
    stop = threading.Event()
    agent = Agent(settings, out=out)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            agent.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 90
    while agent.run_state.status is None and not errors and time.monotonic() < deadline:
        time.sleep(0.2)
    if errors and isinstance(errors[0], SensorUnavailable):
        pytest.skip(str(errors[0]))
    assert agent.run_state.status is not None, errors
    port = _workload(work)
    stop.set()
    thread.join(timeout=120)
    assert not errors, errors
    events = [json.loads(line) for line in out.read_text().splitlines()]
    by_action = {}
    for event in events:
        by_action.setdefault(event["event"]["action"], []).append(event)

    def execs(program):
        return [
            e
            for e in by_action.get("exec", [])
            if e["process"].get("executable", "").endswith(program)
        ]

    # the shell pipeline: cat and wc are children of the sh that ran them
    # (audit resolves /bin/sh to /usr/bin/dash, eBPF keeps the name run: match the argv)
    (shell,) = [
        e
        for e in by_action["exec"]
        if e["process"].get("args") == ["sh", "-c", "cat /etc/hostname | wc -c"]
    ]
    for program, argv in (("/cat", ["cat", "/etc/hostname"]), ("/wc", ["wc", "-c"])):
        (child,) = [e for e in execs(program) if e["process"].get("args") == argv]
        assert child["process"]["parent"]["entity_id"] == shell["process"]["entity_id"]
    # curl: exact argv, and its connect to the loopback server
    (curl,) = execs("/curl")
    assert curl["process"]["args"][-1] == f"http://127.0.0.1:{port}/"
    connects = [
        e
        for e in by_action.get("connect", [])
        if e["process"]["entity_id"] == curl["process"]["entity_id"]
    ]
    assert any(
        c["destination"].get("ip") == "127.0.0.1" and c["destination"].get("port") == port
        for c in connects
    )
    # cp / chmod / mv / rm
    work_paths = {
        (
            e["event"]["action"],
            e["file"]["path"],
            e["file"].get("original_path", ""),
            e["file"].get("mode"),
        )
        for e in events
        if e.get("file") and str(work) in e["file"]["path"]
    }
    assert ("create", str(work / "a"), "", None) in {
        (a, p, o, None) for a, p, o, _ in work_paths
    } or any(a in ("create", "write") and p == str(work / "a") for a, p, o, m in work_paths)
    assert any(a == "chmod" and p == str(work / "a") and m == 0o640 for a, p, o, m in work_paths)
    assert ("rename", str(work / "b"), str(work / "a")) in {(a, p, o) for a, p, o, m in work_paths}
    assert any(a == "delete" and p == str(work / "b") for a, p, o, m in work_paths)
    # the python client's connect, attributed to a python process
    assert any(
        e["destination"].get("port") == port and "python" in e["process"].get("executable", "")
        for e in by_action.get("connect", [])
    )
    # the agent never traced itself
    assert all(e["process"].get("pid") != os.getpid() for e in events)
