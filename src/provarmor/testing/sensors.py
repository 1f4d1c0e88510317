"""Fake live sensors for agent tests (numbered events at a steady rate, or a recorded
capture), with no kernel involved, and :func:`events_while` to drive a real one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.base import LiveSensor
from provarmor.testing.factories import make_event


class FakeSensor:
    """``rate`` events per second, ``limit`` in all (None: until stopped). Event ids are
    ``fake-<n>`` with n counting from ``first``."""

    name = "fake"

    def __init__(
        self, *, rate: float = 1000.0, limit: int | None = None, first: int = 0, lost: int = 0
    ) -> None:
        self.rate = rate
        self.limit = limit
        self.first = first
        self.emitted = 0
        self.lost = lost
        self._stop = threading.Event()

    def start(self) -> None:
        self._stop.clear()

    def events(self) -> Iterator[Event]:
        started = time.monotonic()
        while not self._stop.is_set():
            if self.limit is not None and self.emitted >= self.limit:
                self._stop.wait(0.05)
                continue
            due = int((time.monotonic() - started) * self.rate) - self.emitted
            if due <= 0:
                time.sleep(0.002)
                continue
            room = due if self.limit is None else min(due, self.limit - self.emitted)
            for _ in range(min(room, 500)):
                number = self.first + self.emitted
                yield make_event(
                    Action.WRITE,
                    pid=100 + number % 7,
                    path=f"/srv/fake/{number % 13}",
                    ts=time.time_ns(),
                    event_id=f"fake-{number}",
                )
                self.emitted += 1

    def stop(self) -> None:
        self._stop.set()

    def kernel_counters(self) -> dict[str, int]:
        return {"events": self.emitted, "lost": self.lost}


class ReplaySensor:
    """Replays recorded events (a real capture) as fast as the agent takes them, then idles
    until stopped: agent tests on real data, with no kernel involved."""

    name = "replay"

    def __init__(self, events: list[Event]) -> None:
        self.recorded = events
        self.emitted = 0
        self._stop = threading.Event()

    def start(self) -> None:
        self._stop.clear()

    def events(self) -> Iterator[Event]:
        for event in self.recorded:
            if self._stop.is_set():
                return
            self.emitted += 1
            yield event
        self._stop.wait()

    def stop(self) -> None:
        self._stop.set()

    def kernel_counters(self) -> dict[str, int]:
        return {"events": self.emitted, "lost": 0}


def events_while(
    sensor: LiveSensor,
    act: Callable[[], None],
    *,
    until: Callable[[Event], bool],
    timeout: float = 60.0,
) -> list[Event]:
    """Start ``sensor``, run ``act``, and gather what the sensor yields until an event meets
    ``until`` or ``timeout`` seconds pass; the sensor is stopped and drained either way.
    :class:`~provarmor.sources.base.SensorUnavailable` from ``start`` is raised as is."""
    sensor.start()
    gathered: list[Event] = []
    seen = threading.Event()

    def read() -> None:
        for event in sensor.events():
            gathered.append(event)
            if until(event):
                seen.set()

    reader = threading.Thread(target=read, name="events-while", daemon=True)
    reader.start()
    try:
        act()
        seen.wait(timeout)
    finally:
        sensor.stop()
        reader.join(timeout=timeout)
    return gathered
