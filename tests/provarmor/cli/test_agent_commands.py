"""``provarmor agent``: ``status`` shows the learning state the agent wrote (real learner on
the real benign lab recording); the agent as a real process (root) says when the sensor is up,
and when asked to stop says so at once and ends promptly (run those under the shared lock:
``flock /tmp/provarmor-live.lock .venv/bin/pytest ...``)."""

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provarmor.agent.status import AgentStatus, write_status
from provarmor.cli.agent_commands import addresses_of, describe_learning, format_duration
from provarmor.cli.app import app
from provarmor.detection.anomaly.learning import Learner
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.model.errors import ConfigError
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

BENIGN = Path(__file__).parents[2] / "data" / "lab" / "benign-seed2" / "events.ndjson.gz"
runner = CliRunner(env={"COLUMNS": "300"})


@pytest.fixture(scope="module")
def events():
    return list(read_ndjson(BENIGN, report=IngestReport(source=str(BENIGN)), host=HostContext()))


def _status(state: Path, learning: dict | None) -> None:
    now = time.time()
    state.mkdir(parents=True, exist_ok=True)
    write_status(
        state,
        AgentStatus(
            pid=1, sensor="ebpf", host_id="h", started_at=now, updated_at=now, learning=learning
        ),
    )


def test_agent_status_shows_the_time_left_while_learning(tmp_path, events):
    learner = Learner(LearningSettings(window_seconds=86_400))
    for event in events[:5000]:
        learner.observe(event)
    _status(tmp_path, learner.status().to_dict())
    result = runner.invoke(app, ["agent", "status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "anomaly model: LEARNING this host's baseline, 23 h 59 min left of 24 h 00 min" in (
        result.output
    )
    assert "5000 events" in result.output


def test_agent_status_shows_the_enabled_model(tmp_path, events):
    learner = Learner(LearningSettings(window_seconds=75, relearn_interval_seconds=3600))
    for event in events:
        learner.observe(event)
    _status(tmp_path, learner.status().to_dict())
    result = runner.invoke(app, ["agent", "status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "anomaly model: ENABLED, version 1 trained at" in result.output
    assert "learned on this host: quantile 0.995" in result.output
    assert "next version in 59 min" in result.output


def test_an_agent_that_does_not_learn_says_where_learning_happens():
    assert describe_learning(None).startswith("anomaly model: not learned here")
    assert describe_learning({"phase": "learning", "window_seconds": 60.0}) == (
        "anomaly model: LEARNING, its 1 min 00 s window starts at the first event"
    )


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 s"), (59.9, "59 s"), (61, "1 min 01 s"), (90_000, "25 h 00 min")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


READY_TIMEOUT_S = 90.0
STOP_SAID_WITHIN_S = 1.0
STOPPED_WITHIN_S = {"audit": 3.0, "ebpf": 20.0}
"""bpftrace detaches its probes before it prints its last counts (kernel RCU grace periods):
the agent waits for those counts rather than lose them."""


@pytest.mark.privileged
@pytest.mark.slow
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


def test_a_bad_response_policy_is_refused_with_its_line_before_the_sensor_starts(tmp_path):
    from provarmor.model.errors import ConfigError, ParseError

    policy = tmp_path / "policy.yaml"
    policy.write_text("mode: enforce\nrules:\n  - name: x\n    actions: [explode]\n")
    state = tmp_path / "state"
    result = runner.invoke(
        app, ["agent", "--state-dir", str(state), "--response-policy", str(policy)]
    )
    assert isinstance(result.exception, ParseError)
    assert result.exception.location == f"{policy}:4"
    assert "'explode' is not one of" in result.exception.message
    assert not (state / "spool").exists()
    policy.write_text("mode: dry-run\n")
    result = runner.invoke(
        app, ["agent", "--out", str(tmp_path / "o.ndjson"), "--response-policy", str(policy)]
    )
    assert isinstance(result.exception, ConfigError)
    assert "standalone" in str(result.exception)
    result = runner.invoke(app, ["agent", "--response-policy", str(tmp_path / "missing.yaml")])
    assert isinstance(result.exception, ConfigError)
    assert "cannot read the response policy" in str(result.exception)


def test_the_managers_addresses_join_the_allow_list_of_commands():
    """What the agent never blocks nor isolates itself from: the manager it talks to."""
    assert addresses_of("https://127.0.0.1:8443") == ("127.0.0.1",)
    assert "127.0.0.1" in addresses_of("http://localhost:8443")
    assert addresses_of("https://[::1]:8443") == ("::1",)
    assert addresses_of("https://[broken:8443") == ()  # logged; the configured ones hold


def test_an_enrolled_agent_with_a_bus_publishes_its_spool_batches_there(tmp_path, events):
    import asyncio
    import dataclasses
    import json

    from provarmor.agent.settings import AgentSettings
    from provarmor.agent.spool import SpoolPosition
    from provarmor.bus.stream import STREAM, StreamLayout, connect
    from provarmor.cli.agent_commands import uplink_sink
    from provarmor.response.settings import ResponseSettings
    from provarmor.sources.procfs import read_host_identity
    from provarmor.testing.nats import started

    server = started(tmp_path / "nats")
    try:
        settings = dataclasses.replace(AgentSettings(), state_dir=tmp_path / "agent")
        settings.state_dir.mkdir()
        credential = "pa." + "1" * 16 + "." + "2" * 64  # as a first enrolment saved it
        (settings.state_dir / "manager-credential.json").write_text(
            json.dumps({"url": "https://127.0.0.1:1", "credential": credential})
        )
        response = ResponseSettings(state_dir=tmp_path / "response")
        sink = uplink_sink(
            "https://127.0.0.1:1", settings, response, token=None, ca=None, bus=server.url
        )
        try:
            assert sink.name == "bus"
            # commands come from the bus; neither the manager nor the bus is ever cut off
            responding = sink.listener.runner.responder.context.settings
            assert (responding.manager_addresses, responding.bus_addresses) == (
                ("127.0.0.1",),
                ("127.0.0.1",),
            )
            sink.write(events[:20], SpoolPosition(sequence=20))
            assert sink.committed() == SpoolPosition(sequence=20)
        finally:
            sink.close()

        async def first_message():
            client = await connect(server.url, name="test")
            try:
                js = client.jetstream()
                config = StreamLayout().consumer(0)
                config.filter_subject = "provarmor.partition.*.*"
                config.durable_name = "check"
                await js.add_consumer(STREAM, config)
                subscription = await js.pull_subscribe_bind("check", stream=STREAM)
                (message,) = await subscription.fetch(1, timeout=5)
                return message.headers
            finally:
                await client.close()

        headers = asyncio.run(first_message())
    finally:
        server.stop()
    assert headers["Nats-Msg-Id"] == "1" * 16 + ":20"
    assert headers["Provarmor-Host"] == read_host_identity().id


def test_an_agent_enrolled_in_a_cluster_publishes_with_the_bus_and_user_it_was_given(
    tmp_path, events
):
    """No --bus: the saved enrolment (version 2 answer) names the bus and the agent's own
    user; the secured server takes the batch from that user."""
    import asyncio
    import dataclasses
    import json

    from provarmor.agent.settings import AgentSettings
    from provarmor.agent.spool import SpoolPosition
    from provarmor.bus.credentials import BusAccess, Trust
    from provarmor.bus.stream import STREAM, StreamLayout, connect, ensure_stream
    from provarmor.cli.agent_commands import uplink_sink
    from provarmor.response.settings import ResponseSettings
    from provarmor.sources.procfs import read_host_identity
    from provarmor.testing.nats import started_secured

    trust = Trust.generate()
    server = started_secured(tmp_path / "nats", trust)
    agent_id = "3" * 16
    try:

        async def make_stream() -> None:
            workers = await connect(server.url, name="workers", credentials=trust.service("w"))
            await ensure_stream(workers.jetstream(), StreamLayout(partitions=2))
            await workers.close()

        asyncio.run(make_stream())
        access = BusAccess(
            url=server.url,
            credentials=trust.signer().issue_agent(agent_id, read_host_identity().id),
        )
        settings = dataclasses.replace(AgentSettings(), state_dir=tmp_path / "agent")
        settings.state_dir.mkdir()
        (settings.state_dir / "manager-credential.json").write_text(
            json.dumps(
                {
                    "url": "https://127.0.0.1:1",
                    "credential": f"pa.{agent_id}." + "2" * 64,
                    "bus": access.to_dict(),
                }
            )
        )
        sink = uplink_sink("https://127.0.0.1:1", settings, ResponseSettings(), token=None, ca=None)
        try:
            assert sink.name == "bus"
            sink.write(events[:20], SpoolPosition(sequence=20))
            assert sink.committed() == SpoolPosition(sequence=20)
        finally:
            sink.close()

        async def stored() -> int:
            client = await connect(server.url, name="check", credentials=trust.service("c"))
            try:
                return int((await client.jetstream().stream_info(STREAM)).state.messages)
            finally:
                await client.close()

        assert asyncio.run(stored()) == 1
    finally:
        server.stop()


def test_bus_without_a_manager_is_refused(tmp_path):
    result = runner.invoke(
        app, ["agent", "--bus", "nats://127.0.0.1:1", "--state-dir", str(tmp_path)]
    )
    assert isinstance(result.exception, ConfigError)
    assert result.exception.location == "--bus"
    assert "--bus needs --manager" in result.exception.message
