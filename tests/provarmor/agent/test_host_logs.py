"""The agent's host log source: which one starts, and its events merged with the sensor's
(real syslog files with lines of the real auth.log capture, real tail sources)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from provarmor.agent.host_logs import WithHostLogs, start_host_logs
from provarmor.agent.settings import AgentSettings, HostLogChoice
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext
from provarmor.sources.hostlog.live import SyslogTail

DATA = Path(__file__).resolve().parents[2] / "data" / "hostlogs"
LINES = [line + "\n" for line in (DATA / "auth.log").read_text().splitlines()]
HOST = HostContext(id="vm1")


def _settings(tmp_path: Path, choice: HostLogChoice, log: Path) -> AgentSettings:
    return AgentSettings(host_logs=choice, host_log_path=log, state_dir=tmp_path / "state")


def test_off_and_auto_without_any_log_start_nothing(tmp_path):
    absent = tmp_path / "absent"
    for choice in (HostLogChoice.OFF, HostLogChoice.AUTO):
        settings = _settings(tmp_path, choice, absent / "auth.log")
        assert start_host_logs(settings, host=HOST, journal_socket=absent / "socket") is None


def test_auto_without_journald_tails_the_auth_log(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(LINES[0])
    settings = _settings(tmp_path, HostLogChoice.AUTO, log)
    source = start_host_logs(settings, host=HOST, journal_socket=tmp_path / "no-socket")
    assert isinstance(source, SyslogTail) and source.path == log
    source.stop()
    assert list(source.events()) == []  # started at the end; drained after stop
    saved = json.loads((tmp_path / "state" / "host-logs" / "syslog.json").read_text())
    assert saved["offset"] == len(LINES[0])  # the first start's position is kept at once


def test_an_explicit_source_that_cannot_start_is_an_error_naming_the_file(tmp_path):
    log = tmp_path / "secure"
    settings = _settings(tmp_path, HostLogChoice.SYSLOG, log)
    with pytest.raises(ConfigError, match="cannot read the log") as error:
        start_host_logs(settings, host=HOST, journal_socket=tmp_path / "no-socket")
    assert error.value.location == str(log)


def test_sensor_and_host_log_events_come_out_as_one_stream(tmp_path):
    kernel_log, auth_log = tmp_path / "kernel.log", tmp_path / "auth.log"
    kernel_log.write_text("")
    auth_log.write_text("")
    sensor = SyslogTail(path=kernel_log, state=tmp_path / "k.json", host=HOST, poll_seconds=0.02)
    logs = SyslogTail(path=auth_log, state=tmp_path / "a.json", host=HOST, poll_seconds=0.02)
    sensor.start()
    logs.start()
    combined = WithHostLogs(sensor, logs)
    combined.start()
    seen: list[Event] = []
    reader = threading.Thread(target=lambda: seen.extend(combined.events()))
    reader.start()
    kernel_log.write_text("".join(LINES[:2]))
    auth_log.write_text("".join(LINES[2:5]))
    deadline = time.monotonic() + 10
    while len(seen) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    combined.stop()
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert sorted(event.message for event in seen) == sorted(
        line.split(": ", 1)[1].rstrip("\n") for line in LINES[:5]
    )
    counters = combined.kernel_counters()
    assert counters["events"] == 2 and counters["host_logs.syslog.events"] == 3
    assert counters["host_logs.syslog.lost"] == 0
    assert json.loads((tmp_path / "a.json").read_text())["offset"] == auth_log.stat().st_size
