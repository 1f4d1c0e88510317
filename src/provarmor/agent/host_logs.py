"""The host log source the agent reads beside its kernel sensor, and the two as one stream.

:func:`start_host_logs` picks and starts the source the settings ask for (journald or a
syslog file, see :mod:`provarmor.sources.hostlog.live`); :class:`WithHostLogs` is a
:class:`~provarmor.agent.sensors.LiveSensor` that yields the events of both. Each source is
drained by its own thread into one bounded queue that blocks when full (nothing is dropped:
a slow agent slows the readers, and the kernel sensor counts what the kernel then loses).
The log source's position is saved every :data:`CHECKPOINT_SECONDS` and when it ends, so an
agent restart resumes the log where the events handed to the agent end.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from provarmor.agent.settings import AgentSettings, HostLogChoice
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event
from provarmor.sources.base import HostContext
from provarmor.sources.hostlog.live import JournalFollower, SyslogTail

log = logging.getLogger(__name__)

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
"""Present while systemd-journald runs."""
CHECKPOINT_SECONDS = 1.0
MERGE_QUEUE_EVENTS = 10_000


class Stream(Protocol):
    """What a sensor and a log source share (the LiveSensor shape)."""

    name: str

    def events(self) -> Iterator[Event]: ...

    def stop(self) -> None: ...

    def kernel_counters(self) -> dict[str, int]: ...


def start_host_logs(
    settings: AgentSettings, *, host: HostContext, journal_socket: Path = JOURNAL_SOCKET
) -> JournalFollower | SyslogTail | None:
    """The started host log source, or None (``off``, or ``auto`` finding none). An explicit
    choice that cannot start raises :class:`ConfigError`; ``auto`` logs why and goes on."""
    choice = settings.host_logs
    if choice is HostLogChoice.OFF:
        return None
    state = settings.state_dir / "host-logs"
    if choice is HostLogChoice.AUTO:
        if journal_socket.exists():
            choice = HostLogChoice.JOURNALD
        elif settings.host_log_path.exists():
            choice = HostLogChoice.SYSLOG
        else:
            log.info("no host log source: journald is not running, %s is absent", journal_socket)
            return None
    source: JournalFollower | SyslogTail
    if choice is HostLogChoice.JOURNALD:
        source = JournalFollower(state=state / "journald.json", host=host)
    else:
        source = SyslogTail(path=settings.host_log_path, state=state / "syslog.json", host=host)
    try:
        source.start()
    except ConfigError as error:
        if settings.host_logs is not HostLogChoice.AUTO:
            raise
        log.warning("no host log source: %s", error)
        return None
    return source


class WithHostLogs:
    """A kernel sensor and a host log source as one sensor (the sensor's name)."""

    def __init__(self, sensor: Stream, logs: JournalFollower | SyslogTail) -> None:
        self.name = sensor.name
        self.sensor = sensor
        self.logs = logs
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=MERGE_QUEUE_EVENTS)
        self._threads = [
            threading.Thread(target=self._pump, args=(sensor, False), daemon=True),
            threading.Thread(target=self._pump, args=(logs, True), daemon=True),
        ]

    def start(self) -> None:
        """Both parts are started already (see :func:`start_host_logs`); this reads them."""
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: Stream, checkpoints: bool) -> None:
        last = time.monotonic()
        try:
            for event in stream.events():
                self._queue.put(event)
                if checkpoints and time.monotonic() - last >= CHECKPOINT_SECONDS:
                    self.logs.checkpoint()
                    last = time.monotonic()
            failure = getattr(stream, "failure", "")
            if failure:
                log.error("%s ended: %s", stream.name, failure)
        except Exception:  # one failed part must not end the other's events
            log.exception("%s failed", stream.name)
        finally:
            self._queue.put(None)

    def events(self) -> Iterator[Event]:
        ended = 0
        while ended < len(self._threads):
            event = self._queue.get()
            if event is None:
                ended += 1
                continue
            yield event

    def stop(self) -> None:
        self.sensor.stop()
        self.logs.stop()

    def kernel_counters(self) -> dict[str, int]:
        counters = dict(self.sensor.kernel_counters())
        for key, value in self.logs.kernel_counters().items():
            counters[f"host_logs.{self.logs.name}.{key}"] = value
        return counters
