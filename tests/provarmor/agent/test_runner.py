import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provarmor.agent.runner import ALERTS_FILE, Agent
from provarmor.agent.settings import AgentSettings
from provarmor.agent.spool import Spool
from provarmor.agent.status import read_status
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.pipeline.config import AnalysisConfig
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson
from provarmor.storage.sqlite_graph import SqliteGraphStore
from provarmor.testing.sensors import FakeSensor, ReplaySensor

CHILD = Path(__file__).with_name("agent_child.py")


def settings(tmp_path, **changes):
    return AgentSettings(
        state_dir=tmp_path / "state", batch_events=500, status_interval_seconds=0.1, **changes
    )


def ids(path):
    return [json.loads(line)["event"]["id"] for line in path.read_text().splitlines()]


def test_events_reach_the_ndjson_sink_once_and_status_is_written(tmp_path):
    out = tmp_path / "out.ndjson"
    sensor = FakeSensor(rate=5000, limit=3000)
    status = Agent(settings(tmp_path), out=out, start=lambda c: sensor).run(
        threading.Event(), duration=1.5
    )
    assert ids(out) == [f"fake-{n}" for n in range(3000)]
    assert status.counters["sink.out.events"] == 3000
    assert status.counters["queue.dropped"] == 0
    assert not status.running
    assert read_status(tmp_path / "state").counters["spool.appended"] == 3000


def test_default_sink_is_the_graph_store(tmp_path):
    sensor = FakeSensor(rate=5000, limit=1000)
    Agent(settings(tmp_path), start=lambda c: sensor).run(threading.Event(), duration=1.0)
    store = SqliteGraphStore(tmp_path / "state" / "graph.db")
    assert store.stats().edges_by_action == {"write": 1000}
    store.close()


def test_kernel_losses_raise_sensor_blind(tmp_path):
    sensor = FakeSensor(rate=2000)
    run = Agent(settings(tmp_path), out=tmp_path / "o.ndjson", start=lambda c: sensor)

    def lose() -> None:
        time.sleep(0.3)
        sensor.lost = 10_000

    threading.Thread(target=lose).start()
    status = run.run(threading.Event(), duration=1.0)
    assert status.counters["sensor.lost"] == 10_000
    alerts = (tmp_path / "state" / ALERTS_FILE).read_text().splitlines()
    assert json.loads(alerts[0])["rule"]["id"] == "provarmor-agent-sensor-blind"


def test_a_stopped_sensor_is_blind(tmp_path):
    sensor = FakeSensor(rate=2000, limit=10)

    def dying_events():
        yield from []

    sensor.events = dying_events  # type: ignore[method-assign]
    run = Agent(settings(tmp_path), out=tmp_path / "o.ndjson", start=lambda c: sensor)
    run.run(threading.Event(), duration=0.6)
    alert = json.loads((tmp_path / "state" / ALERTS_FILE).read_text().splitlines()[0])
    assert alert["rule"]["description"] == "the sensor stopped"


def _pending_in_spool(state: Path, tmp_path: Path) -> list[str]:
    copy = tmp_path / "spool-copy"
    shutil.copytree(state / "spool", copy)
    (copy / "spool.lock").unlink(missing_ok=True)
    for ack in copy.glob("*.ack"):
        ack.unlink()
    spool = Spool(copy, max_bytes=1 << 30, fsync=False, consumers=["inspect"])
    found: list[str] = []
    while True:
        batch = spool.read("inspect", 10_000)
        if not batch.events:
            break
        found += [event.event.id for event in batch.events]
        spool.ack("inspect", batch.position)
    spool.close()
    return found


@pytest.mark.parametrize("kill_after", [0.0, 0.6])
def test_killed_agent_resumes_from_the_spool_without_loss_or_duplicates(tmp_path, kill_after):
    """Killed ``kill_after`` seconds after its sink first committed (so a loaded machine's
    slow start does not decide the moment)."""
    state, out = tmp_path / "state", tmp_path / "out.ndjson"
    child = subprocess.Popen([sys.executable, str(CHILD), str(state), str(out), "0", "30"])
    sidecar_path = out.with_name(out.name + ".position")
    deadline = time.monotonic() + 60
    while not sidecar_path.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    assert sidecar_path.exists(), "the agent committed nothing within 60 s"
    time.sleep(kill_after)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    sidecar = json.loads(out.with_name(out.name + ".position").read_text())
    committed = ids(out)[: sum(1 for _ in out.read_bytes()[: sidecar["length"]].splitlines())]
    pending = _pending_in_spool(state, tmp_path)
    expected = list(dict.fromkeys(committed + pending))
    assert expected, "the first run stored nothing"
    # restart: numbering continues where the sensor would be, and runs to a clean stop
    restarted = subprocess.run(
        [sys.executable, str(CHILD), str(state), str(out), "1000000", "0.8"], check=True
    )
    assert restarted.returncode == 0
    delivered = ids(out)
    assert len(delivered) == len(set(delivered)), "an event was delivered twice"
    before_restart = [i for i in delivered if int(i.split("-")[1]) < 1_000_000]
    assert before_restart == expected, "an event stored before the kill was lost"
    assert any(int(i.split("-")[1]) >= 1_000_000 for i in delivered)


LAB = Path(__file__).parents[2] / "data" / "lab"


def _recorded(name):
    path = LAB / name / "events.ndjson.gz"
    return list(read_ndjson(path, report=IngestReport(source=str(path)), host=HostContext()))


def test_standalone_agent_learns_its_host_then_alerts_on_the_attack(tmp_path):
    # The benign lab run is this host's baseline (a 75 s window of its event time), then the
    # attack recorded on the same host: learned, enabled, and the attack's process alerted.
    events = _recorded("benign-seed2") + _recorded("nodlink-ubuntu-seed1")
    learning = LearningSettings(window_seconds=75, relearn_interval_seconds=0)
    agent = Agent(
        settings(tmp_path),
        start=lambda c: ReplaySensor(events),
        analysis=AnalysisConfig(learning=learning),
    )
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,))
    runner.start()
    state = tmp_path / "state"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = read_status(state) if (state / "agent-status.json").exists() else None
        if status is not None and status.counters.get("sink.learning.events", 0) >= len(events):
            break
        time.sleep(0.1)
    stop.set()
    runner.join(timeout=60)
    status = read_status(state)
    assert status.counters["sink.learning.events"] == len(events)
    assert status.learning is not None
    assert status.learning["phase"] == "enabled"
    assert status.learning["model_version"] == 1
    assert (state / "models" / "model-v0001.bundle").exists()
    alerts = [json.loads(line) for line in (state / ALERTS_FILE).read_text().splitlines()]
    assert [a["rule"]["id"] for a in alerts] == ["provarmor.anomaly.process"] * len(alerts)
    assert alerts  # measured: one, on the attacker's process
    labels = json.loads((LAB / "nodlink-ubuntu-seed1" / "entity-labels.json").read_text())
    flagged = {pid for a in alerts for pid in a["related"]["process_entity_ids"]}
    assert flagged <= set(labels["processes"])


def test_an_agent_that_uploads_or_records_does_not_learn(tmp_path):
    sensor = FakeSensor(rate=5000, limit=200)
    status = Agent(
        settings(tmp_path),
        out=tmp_path / "o.ndjson",
        start=lambda c: sensor,
        analysis=AnalysisConfig(),
    ).run(threading.Event(), duration=0.5)
    assert status.learning is None
    assert not (tmp_path / "state" / "models").exists()


def test_agent_state_folders_and_databases_are_private(tmp_path):
    old = os.umask(0o022)  # the usual umask: without care, 0755 folders and 0644 files
    try:
        sensor = FakeSensor(rate=5000, limit=500)
        Agent(settings(tmp_path), start=lambda c: sensor).run(threading.Event(), duration=1.0)
    finally:
        os.umask(old)
    state = tmp_path / "state"
    folders = [state, *(p for p in state.rglob("*") if p.is_dir())]
    assert {str(p): stat.S_IMODE(p.stat().st_mode) for p in folders} == {
        str(p): 0o700 for p in folders
    }
    databases = list(state.glob("graph.db*"))
    assert state / "graph.db" in databases
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in databases} == {
        p.name: 0o600 for p in databases
    }
