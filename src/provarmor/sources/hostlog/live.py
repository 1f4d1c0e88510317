"""Live host-log sources: journald followed through ``journalctl``, or a syslog file tailed.
Both resume where they stopped, from a small state file.

* :class:`JournalFollower` runs ``journalctl -o json --follow`` after the saved cursor (from
  the journal's end on a first start) and turns each entry into an event. ``journalctl`` is a
  child process, not a library binding: a crash in it cannot take the agent down (Filebeat
  moved the same way after crashes in libsystemd).
* :class:`SyslogTail` reads the complete lines appended to a syslog file (``auth.log``,
  ``secure``), resuming at the saved inode and offset. A file renamed away by log rotation
  (found as ``PATH.1``) is read to its end before the new file; one truncated in place is
  read again from its start. A saved file that is gone altogether is counted in
  ``missed_files``: what it held past the offset is lost, and said so.

:meth:`checkpoint` saves the position of the last event handed out (written to a temporary
file and renamed over the state, so a crash leaves the old state or the new one); ``events()``
saves it too when it ends, after :meth:`stop`, with everything read. Lines that are no log
line (a syslog line longer than :data:`MAX_LINE_BYTES` is cut there) are counted in
``parse_errors`` and skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from provarmor.model.errors import ConfigError, ParseError
from provarmor.model.event import Event, Host, LogRef
from provarmor.sources.base import HostContext
from provarmor.sources.hostlog.events import EventIds, build_event
from provarmor.sources.hostlog.importer import syslog_text
from provarmor.sources.hostlog.lines import LogLine, parse_journal_line, parse_syslog_line

STATE_FORMAT_VERSION = 1
MAX_LINE_BYTES = 1024 * 1024
"""A longer syslog line is cut here rather than held whole."""


@dataclass(slots=True)
class LiveCounters:
    events: int = 0
    parse_errors: int = 0
    missed_files: int = 0
    """Saved files that were gone (rotated twice, deleted) when the source started."""
    truncations: int = 0
    failures: int = 0
    """Times ``journalctl`` ended on its own (a cursor the journal no longer has ...); the
    reason is in ``JournalFollower.failure``."""


def load_state(path: Path, *, kind: str) -> dict[str, object] | None:
    """The saved position (None before a first run); :class:`ConfigError` naming the file
    when it is unreadable, of another version or of another source."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ConfigError(f"unreadable log position: {error}", location=str(path)) from None
    if not isinstance(state, dict) or state.get("format_version") != STATE_FORMAT_VERSION:
        raise ConfigError(
            f"log position of an unknown format (this build reads version {STATE_FORMAT_VERSION})",
            location=str(path),
        )
    if state.get("source") != kind:
        raise ConfigError(
            f"log position of a {state.get('source')!r} source, not {kind!r}", location=str(path)
        )
    return state


def save_state(path: Path, *, kind: str, position: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    state = {"format_version": STATE_FORMAT_VERSION, "source": kind, **position}
    temporary.write_text(json.dumps(state), encoding="utf-8")
    os.replace(temporary, path)


class JournalFollower:
    """Follows journald; ``command`` is how to run ``journalctl`` (a prefix such as
    ``nsenter -t PID -m journalctl`` reaches a journal in another mount namespace)."""

    name = "journald"

    def __init__(
        self, *, state: Path, host: HostContext, command: Sequence[str] = ("journalctl",)
    ) -> None:
        self.state = state
        self.command = tuple(command)
        self.counters = LiveCounters()
        self._host = Host(id=host.id, name=host.name, boot_id=host.boot_id)
        self._cursor = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._ids = EventIds()
        self._stopping = False
        self.failure = ""
        """What ``journalctl`` said when it ended on its own (empty otherwise)."""

    def start(self) -> None:
        """Follow after the saved cursor; on a first start, after the journal's last entry
        (saved at once, so entries written before a first restart are not skipped)."""
        saved = load_state(self.state, kind=self.name)
        if saved is not None:
            self._cursor = str(saved["cursor"])
        else:
            self._cursor = self._last_cursor()
            self.checkpoint()
        where = ["--after-cursor", self._cursor] if self._cursor else ["--lines", "all"]
        try:
            self._process = subprocess.Popen(
                [*self.command, "-o", "json", "--follow", "--no-pager", *where],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as error:
            raise ConfigError(f"cannot run journalctl: {error}") from None

    def _last_cursor(self) -> str:
        """The cursor of the journal's last entry ("" for an empty journal)."""
        try:
            done = subprocess.run(
                [*self.command, "-o", "json", "--lines", "1", "--no-pager"],
                capture_output=True,
                timeout=60,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise ConfigError(f"cannot run journalctl: {error}") from None
        for raw in done.stdout.splitlines():
            try:
                return parse_journal_line(raw, location="journalctl").cursor
            except ParseError:
                self.counters.parse_errors += 1
        return ""

    def events(self) -> Iterator[Event]:
        assert self._process is not None and self._process.stdout is not None, "not started"
        for number, raw in enumerate(self._process.stdout, 1):
            if not raw.strip():
                continue
            try:
                line = parse_journal_line(raw, location=f"journalctl:{number}")
            except ParseError:
                self.counters.parse_errors += 1
                continue
            self._cursor = line.cursor or self._cursor
            self.counters.events += 1
            yield build_event(
                line,
                host=self._host,
                log=LogRef(file="journald", record=line.cursor),
                dataset="journald",
                occurrence=self._ids.occurrence(line, dataset="journald"),
            )
        self._process.stdout.close()
        said = self._process.stderr.read() if self._process.stderr is not None else b""
        if self._process.wait() != 0 and not self._stopping:
            self.counters.failures += 1
            self.failure = said.decode("utf-8", "replace").strip() or "journalctl ended"
        if self._process.stderr is not None:
            self._process.stderr.close()
        self.checkpoint()

    def checkpoint(self) -> None:
        if self._cursor:
            save_state(self.state, kind=self.name, position={"cursor": self._cursor})

    def stop(self) -> None:
        self._stopping = True
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def kernel_counters(self) -> dict[str, int]:
        return {
            "events": self.counters.events,
            "lost": 0,
            "parse_errors": self.counters.parse_errors,
            "failures": self.counters.failures,
        }


class SyslogTail:
    """Tails one syslog text file (any shape :func:`parse_syslog_line` reads)."""

    name = "syslog"

    def __init__(
        self, *, path: Path, state: Path, host: HostContext, poll_seconds: float = 0.25
    ) -> None:
        self.path = path
        self.state = state
        self.poll_seconds = poll_seconds
        self.counters = LiveCounters()
        self._host = Host(id=host.id, name=host.name, boot_id=host.boot_id)
        self._stopping = threading.Event()
        self._queue: list[tuple[IO[bytes], int]] = []
        """Files to read, in order, each with the offset to read it from."""
        self._position: tuple[int, int] | None = None
        """(inode, offset) after the last line handed out."""
        self._ids = EventIds()

    def start(self) -> None:
        saved = load_state(self.state, kind=self.name)
        try:
            current = self.path.open("rb")
        except OSError as error:
            raise ConfigError(f"cannot read the log: {error}", location=str(self.path)) from None
        if saved is None:  # from the end; saved at once, as the journal's first start is
            status = os.fstat(current.fileno())
            self._queue = [(current, status.st_size)]
            self._position = (status.st_ino, status.st_size)
            self.checkpoint()
            return
        inode, offset = int(str(saved["inode"])), int(str(saved["offset"]))
        if os.fstat(current.fileno()).st_ino == inode:
            self._queue = [(current, offset)]
            return
        rotated = self.path.with_name(self.path.name + ".1")
        if rotated.exists() and rotated.stat().st_ino == inode:
            self._queue = [(rotated.open("rb"), offset), (current, 0)]
            return
        self.counters.missed_files += 1
        self._queue = [(current, 0)]

    def events(self) -> Iterator[Event]:
        while self._queue:
            handle, offset = self._queue[0]
            handle.seek(offset)
            yield from self._read_file(handle, offset)
            handle.close()
            self._queue.pop(0)
            if self._stopping.is_set():
                break
        for handle, _ in self._queue:
            handle.close()
        self.checkpoint()

    def _read_file(self, handle: IO[bytes], offset: int) -> Iterator[Event]:
        """Lines of ``handle`` from ``offset`` on; at its end, waits for more unless it is a
        rotated file, the path now names another file, or the source is stopping."""
        inode = os.fstat(handle.fileno()).st_ino
        pending = b""
        while True:
            chunk = handle.readline(MAX_LINE_BYTES)
            if chunk:
                pending += chunk
                if not pending.endswith(b"\n") and len(pending) < MAX_LINE_BYTES:
                    continue
                offset += len(pending)
                line, pending = pending, b""
                event = self._event(line, inode=inode, offset=offset)
                if event is not None:
                    yield event
                continue
            if len(self._queue) > 1 or self._stopping.is_set() or self._replaced(inode):
                return
            if os.fstat(handle.fileno()).st_size < offset:
                self.counters.truncations += 1
                handle.seek(0)
                offset, pending = 0, b""
                continue
            self._stopping.wait(self.poll_seconds)

    def _replaced(self, inode: int) -> bool:
        """The path names a new file now (rotation): queue it; this one is read out."""
        try:
            current = self.path.open("rb")
        except OSError:
            return False
        if os.fstat(current.fileno()).st_ino == inode:
            current.close()
            return False
        self._queue.append((current, 0))
        return True

    def _event(self, raw: bytes, *, inode: int, offset: int) -> Event | None:
        self._position = (inode, offset)
        text = syslog_text(raw.rstrip(b"\r\n"))
        if not text.strip():
            return None
        location = f"{self.path}@{offset}"
        try:
            line: LogLine = parse_syslog_line(text, written=datetime.now(UTC), location=location)
        except ParseError:
            self.counters.parse_errors += 1
            return None
        self.counters.events += 1
        return build_event(
            line,
            host=self._host,
            log=LogRef(file=str(self.path), record=str(offset)),
            dataset="syslog",
            occurrence=self._ids.occurrence(line, dataset="syslog"),
        )

    def checkpoint(self) -> None:
        if self._position is not None:
            inode, offset = self._position
            save_state(self.state, kind=self.name, position={"inode": inode, "offset": offset})

    def stop(self) -> None:
        self._stopping.set()

    def kernel_counters(self) -> dict[str, int]:
        return {
            "events": self.counters.events,
            "lost": self.counters.missed_files,
            "parse_errors": self.counters.parse_errors,
            "truncations": self.counters.truncations,
        }
