"""``provarmor agent status`` shows the learning state the agent wrote (real learner on the
real benign lab recording)."""

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provarmor.agent.status import AgentStatus, write_status
from provarmor.cli.agent_commands import describe_learning, format_duration
from provarmor.cli.app import app
from provarmor.detection.anomaly.learning import Learner
from provarmor.detection.anomaly.settings import LearningSettings
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
