"""Live host-log sources: a syslog file tailed across restarts, rotation and truncation (real
files, lines of the real auth.log capture), and journald followed through journalctl (a real
systemd-journald started in a private mount namespace, so the host's journal is untouched)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provarmor.model.errors import ConfigError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext
from provarmor.sources.hostlog.live import JournalFollower, SyslogTail

DATA = Path(__file__).resolve().parents[3] / "data" / "hostlogs"
LINES = [line + "\n" for line in (DATA / "auth.log").read_text().splitlines()]
JOURNALD = Path("/lib/systemd/systemd-journald")


class Collector:
    """Runs a live source's ``events()`` in a thread and gathers what it yields."""

    def __init__(self, source: SyslogTail | JournalFollower) -> None:
        self.source = source
        self.events: list[Event] = []
        source.start()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        iterator: Iterator[Event] = self.source.events()
        for event in iterator:
            self.events.append(event)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.events) >= count, f"{len(self.events)} events, expected {count}"
        return self.events

    def stop(self) -> list[Event]:
        self.source.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        return self.events


def _append(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(lines)


def _messages(events: list[Event]) -> list[str]:
    return [event.message for event in events]


def _text(line: str) -> str:
    return line.split(": ", 1)[1].rstrip("\n")


@pytest.fixture
def tail(tmp_path: Path) -> Callable[[], Collector]:
    log = tmp_path / "auth.log"
    log.write_text("".join(LINES[:3]))
    return lambda: Collector(
        SyslogTail(
            path=log, state=tmp_path / "state" / "auth.json", host=HostContext(), poll_seconds=0.02
        )
    )


def test_tail_starts_at_the_end_then_resumes_after_a_restart_without_repeats(tail, tmp_path):
    log = tmp_path / "auth.log"
    first = tail()
    _append(log, LINES[3:6])
    assert _messages(first.wait_for(3)) == [_text(line) for line in LINES[3:6]]
    first.stop()
    _append(log, LINES[6:9])  # written while the agent was down
    second = tail()
    _append(log, LINES[9:10])
    events = second.wait_for(4)
    second.stop()
    assert _messages(events) == [_text(line) for line in LINES[6:10]]
    state = json.loads((tmp_path / "state" / "auth.json").read_text())
    assert state == {
        "format_version": 1,
        "source": "syslog",
        "inode": log.stat().st_ino,
        "offset": log.stat().st_size,
    }


def test_tail_holds_a_partial_line_until_its_newline(tail, tmp_path):
    log = tmp_path / "auth.log"
    source = tail()
    _append(log, [LINES[3][:20]])
    time.sleep(0.2)
    assert source.events == []
    _append(log, [LINES[3][20:]])
    assert _messages(source.wait_for(1)) == [_text(LINES[3])]
    source.stop()


def test_tail_reads_a_rotated_file_out_before_the_new_one(tail, tmp_path):
    log = tmp_path / "auth.log"
    source = tail()
    _append(log, LINES[3:4])
    source.wait_for(1)
    os.rename(log, tmp_path / "auth.log.1")  # logrotate
    _append(tmp_path / "auth.log.1", LINES[4:5])  # the daemon still writes the old file
    log.write_text("".join(LINES[5:7]))
    events = source.wait_for(4)
    source.stop()
    assert _messages(events) == [_text(line) for line in LINES[3:7]]


def test_tail_resumes_in_the_rotated_file_after_a_restart(tail, tmp_path):
    log = tmp_path / "auth.log"
    source = tail()
    _append(log, LINES[3:4])
    source.wait_for(1)
    source.stop()
    _append(log, LINES[4:5])
    os.rename(log, tmp_path / "auth.log.1")
    log.write_text("".join(LINES[5:6]))
    again = tail()
    events = again.wait_for(2)
    again.stop()
    assert _messages(events) == [_text(line) for line in LINES[4:6]]
    assert again.source.counters.missed_files == 0


def test_tail_counts_a_saved_file_that_is_gone_and_reads_the_new_one_whole(tail, tmp_path):
    log = tmp_path / "auth.log"
    source = tail()
    source.stop()
    replacement = tmp_path / "auth.log.new"  # made first, so it cannot reuse the inode
    replacement.write_text("".join(LINES[7:9]))
    os.replace(replacement, log)
    again = tail()
    events = again.wait_for(2)
    again.stop()
    assert _messages(events) == [_text(line) for line in LINES[7:9]]
    assert again.source.kernel_counters()["lost"] == 1


def test_tail_rereads_a_file_truncated_in_place_and_counts_bad_lines(tail, tmp_path):
    log = tmp_path / "auth.log"
    source = tail()
    log.write_text("")  # copytruncate
    _append(log, ["no syslog line\n", *LINES[3:4]])
    events = source.wait_for(1)
    source.stop()
    assert _messages(events) == [_text(LINES[3])]
    assert (source.source.counters.truncations, source.source.counters.parse_errors) == (1, 1)


def test_a_state_file_of_another_version_is_refused_naming_it(tmp_path):
    state = tmp_path / "auth.json"
    state.write_text('{"format_version": 9, "source": "syslog", "inode": 1, "offset": 0}')
    source = SyslogTail(path=DATA / "auth.log", state=state, host=HostContext())
    with pytest.raises(ConfigError, match="unknown format") as error:
        source.start()
    assert error.value.location == str(state)


def test_state_fixtures_of_format_version_1_still_read(tmp_path):
    for name in ("state-v1-syslog.json", "state-v1-journald.json"):
        saved = json.loads((DATA / name).read_text())
        assert saved["format_version"] == 1
    state = tmp_path / "auth.json"
    log = tmp_path / "auth.log"
    log.write_text("".join(LINES[:2]))
    fixture = json.loads((DATA / "state-v1-syslog.json").read_text())
    state.write_text(json.dumps({**fixture, "inode": log.stat().st_ino, "offset": len(LINES[0])}))
    source = Collector(SyslogTail(path=log, state=state, host=HostContext(), poll_seconds=0.02))
    assert _messages(source.wait_for(1)) == [_text(LINES[1])]
    source.stop()


# -- journald ---------------------------------------------------------------------------------


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[int]:
    """A real systemd-journald in a private mount namespace (tmpfs over its runtime and
    journal folders; not reading the kernel's messages, which other work on the machine
    fills); yields its pid, which ``nsenter -t PID -m`` joins."""
    if os.geteuid() != 0 or not JOURNALD.exists() or shutil.which("nsenter") is None:
        pytest.skip("needs root, /lib/systemd/systemd-journald and nsenter")
    script = (
        "mkdir -p /run/systemd /run/log /var/log/journal && "
        "mount -t tmpfs tmpfs /run/systemd && mount -t tmpfs tmpfs /run/log && "
        "mount -t tmpfs tmpfs /var/log/journal && mkdir /run/systemd/journald.conf.d && "
        "printf '[Journal]\\nReadKMsg=no\\n' >/run/systemd/journald.conf.d/test.conf && "
        f"exec {JOURNALD}"
    )
    process = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _in_namespace(
        process.pid, "test -S /run/systemd/journal/dev-log"
    ):
        time.sleep(0.05)
    try:
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def _in_namespace(pid: int, command: str) -> bool:
    return subprocess.run(["nsenter", "-t", str(pid), "-m", "sh", "-c", command]).returncode == 0


def _log(pid: int, tag: str, message: str) -> None:
    subprocess.run(
        [
            *("nsenter", "-t", str(pid), "-m", "logger", "-u", "/run/systemd/journal/dev-log"),
            *("-t", tag, "-p", "authpriv.info", message),
        ],
        check=True,
    )


def test_journal_follower_resumes_after_its_cursor_without_repeats_or_losses(journald, tmp_path):
    state = tmp_path / "journal.json"
    command = ("nsenter", "-t", str(journald), "-m", "journalctl")

    def follower() -> Collector:
        return Collector(JournalFollower(state=state, host=HostContext(), command=command))

    _log(journald, "sshd", "Server listening on 10.99.15.2 port 22.")  # before the first start
    first = follower()
    probes = _wait_until_following(journald, first)
    texts = [_text(line) for line in LINES if " sshd[" in line][:6]
    for text in texts[:3]:
        _log(journald, "sshd", text)
    first.wait_for(probes + 3)
    events = first.stop()[probes:]
    assert _messages(events) == texts[:3]
    for text in texts[3:5]:  # while the agent is down
        _log(journald, "sshd", text)
    second = follower()
    _log(journald, "sshd", texts[5])
    again = second.wait_for(3)
    second.stop()
    assert _messages(again) == texts[3:6]
    assert json.loads(state.read_text())["cursor"] == again[-1].log.record  # type: ignore[union-attr]
    failed = [e for e in events + again if e.message.startswith("Failed password")]
    assert failed and all(e.source and e.source.ip == "10.99.15.1" for e in failed)


def _wait_until_following(pid: int, collector: Collector) -> int:
    """Log probes until the follower shows one (journalctl has reached the journal's end),
    then a marker after every probe; returns how many events came up to the marker."""
    deadline = time.monotonic() + 10
    while not collector.events and time.monotonic() < deadline:
        _log(pid, "probe", "probe")
        time.sleep(0.1)
    _log(pid, "probe", "ready")
    while "ready" not in _messages(collector.events) and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = _messages(collector.events)
    assert "ready" in seen and set(seen) == {"probe", "ready"}
    return seen.index("ready") + 1


def test_journalctl_ending_on_its_own_is_counted_with_what_it_said(journald, tmp_path):
    state = tmp_path / "journal.json"
    state.write_text(
        json.dumps({"format_version": 1, "source": "journald", "cursor": "not-a-cursor"})
    )
    command = ("nsenter", "-t", str(journald), "-m", "journalctl")
    follower = JournalFollower(state=state, host=HostContext(), command=command)
    follower.start()
    assert list(follower.events()) == []
    assert follower.kernel_counters()["failures"] == 1
    assert "cursor" in follower.failure.lower()
