"""The real agent with the eBPF sensor, its graph store and ``provarmor trace``: a file that
curl downloaded from a local HTTP server traces back to that server. curl's bytes are
summed in the kernel and flushed up to a second later, after the file was created; the
flow must keep the time of its first byte for the time-respecting trace to reach it."""

import functools
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
from provarmor.model.ids import file_node_id
from provarmor.sources.base import SensorUnavailable
from provarmor.sources.procfs import read_host_identity

pytestmark = [pytest.mark.privileged, pytest.mark.slow]


def test_backward_trace_from_a_downloaded_file_reaches_the_server(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the agent needs root")
    if shutil.which("bpftrace") is None or shutil.which("curl") is None:
        pytest.skip("bpftrace and curl are needed (scripts/bootstrap.sh dev installs them)")
    site = tmp_path / "site"
    site.mkdir()
    (site / "tool.bin").write_bytes(os.urandom(256 * 1024))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    state = tmp_path / "state"
    settings = AgentSettings(sensor=SensorChoice.EBPF, state_dir=state, status_interval_seconds=0.5)
    agent = Agent(settings)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            agent.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 90
        while agent.run_state.status is None and not errors and time.monotonic() < deadline:
            time.sleep(0.2)
        if errors and isinstance(errors[0], SensorUnavailable):  # root checked above
            pytest.fail(f"no sensor could start: {errors[0]}")
        assert agent.run_state.status is not None, errors
        target = tmp_path / "downloaded.bin"
        url = f"http://127.0.0.1:{port}/tool.bin"
        subprocess.run(["curl", "-fsS", "-o", str(target), url], check=True, timeout=60)
    finally:
        stop.set()
        thread.join(timeout=120)
        server.shutdown()
        server.server_close()
    assert not errors, errors
    node = file_node_id(read_host_identity().id, str(target))
    command = [sys.executable, "-m", "provarmor", "trace", node, "--backward", "--json"]
    traced = subprocess.run(
        [*command, "--db", str(state / "graph.db")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(traced.stdout)
    nodes = {entry["id"]: entry for entry in result["nodes"]}
    assert f"sock:127.0.0.1:{port}" in nodes, sorted(nodes)
    received = [
        edge
        for edge in result["edges"]
        if edge["action"] == "recv" and edge["src"] == f"sock:127.0.0.1:{port}"
    ]
    created = [edge for edge in result["edges"] if edge["dst"] == node]
    assert received and created
    assert received[0]["first_ts"] <= min(edge["last_ts"] for edge in created)
