"""A fake live sensor for agent tests: emits numbered events at a steady rate (and can
pretend the kernel lost some), with no kernel involved."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from provarmor.model.actions import Action
from provarmor.model.event import Event
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
