"""The Detector seam: a detector takes events (and, later, graph deltas) and returns signals.

A signal is an :class:`~provarmor.model.alert.Alert`. Detectors never know where events
come from or where alerts go (no files, sockets or stores here); the pipeline wires them.
Stateful detectors (correlations, windows) get :meth:`Detector.flush` at end of stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from provarmor.model.alert import Alert
from provarmor.model.event import Event

Signal = Alert
"""What detectors emit. Today every signal is an alert."""


class Detector(Protocol):
    """Takes events in stream order, returns the signals each one completes."""

    name: str

    def on_event(self, event: Event) -> Sequence[Signal]: ...

    def flush(self) -> Sequence[Signal]:
        """End of stream: emit what open windows hold, then forget them."""
        ...


def detect(detectors: Sequence[Detector], events: Iterable[Event]) -> Iterator[Signal]:
    """Run every detector over a finite stream, in order, flushing them at the end."""
    for event in events:
        for detector in detectors:
            yield from detector.on_event(event)
    for detector in detectors:
        yield from detector.flush()
