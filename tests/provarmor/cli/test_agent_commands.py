"""``provarmor agent`` as a real process (root): it says when the sensor is up, and when it is
asked to stop it says so at once and ends promptly.

Run under the shared lock: ``flock /tmp/provarmor-live.lock .venv/bin/pytest ...``."""

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

pytestmark = [pytest.mark.privileged, pytest.mark.slow]
READY_TIMEOUT_S = 90.0
STOP_SAID_WITHIN_S = 1.0
STOPPED_WITHIN_S = {"audit": 3.0, "ebpf": 20.0}
"""bpftrace detaches its probes before it prints its last counts (kernel RCU grace periods):
the agent waits for those counts rather than lose them."""


@pytest.mark.parametrize("sensor", ["audit", "ebpf"])
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_agent_says_ready_and_stops_promptly(tmp_path, sensor, stop_signal):
    if os.geteuid() != 0:
        pytest.skip("the agent needs root")
    if sensor == "ebpf" and shutil.which("bpftrace") is None:
        pytest.skip("bpftrace is not installed (scripts/bootstrap.sh dev installs it)")
    command = [sys.executable, "-m", "provarmor", "agent", "--sensor", sensor]
    command += ["--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "events.ndjson")]
    agent = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def read() -> None:
        assert agent.stdout is not None
        for line in agent.stdout:
            lines.put((time.monotonic(), line))

    threading.Thread(target=read, daemon=True).start()

    def wait_for(text: str, timeout: float) -> tuple[float, list[str]]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return at, seen
        raise AssertionError(f"no {text!r} within {timeout} s: {''.join(seen)}")

    try:
        _, seen = wait_for("ready:", READY_TIMEOUT_S)
        assert f"the {sensor} sensor is up" in seen[-1]
        asked = time.monotonic()
        agent.send_signal(stop_signal)
        said, _ = wait_for("stopping", 5.0)
        assert said - asked <= STOP_SAID_WITHIN_S
        agent.wait(timeout=60)
        assert time.monotonic() - asked <= STOPPED_WITHIN_S[sensor]
        assert agent.returncode == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(timeout=10)
        assert agent.stdout is not None
        agent.stdout.close()
