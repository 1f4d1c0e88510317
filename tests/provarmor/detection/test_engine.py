"""The Detector seam: detect() runs detectors in order and flushes them at the end."""

from __future__ import annotations

from provarmor.detection.engine import Detector, detect
from provarmor.model.actions import Action
from provarmor.model.alert import Alert
from provarmor.model.event import Event
from provarmor.testing.factories import make_event


class CountingDetector:
    name = "counting"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_event(self, event: Event) -> list[Alert]:
        self.seen.append(event.event.id)
        if event.event.action is Action.EXEC:
            return [Alert(id=event.event.id, rule_id="exec", rule_title="exec seen")]
        return []

    def flush(self) -> list[Alert]:
        return [Alert(id="end", rule_id="end", rule_title="flushed")]


def test_detect_runs_every_detector_and_flushes():
    first, second = CountingDetector(), CountingDetector()
    detectors: list[Detector] = [first, second]
    events = [make_event(Action.EXEC, event_id="e1"), make_event(Action.OPEN, event_id="e2")]
    alerts = list(detect(detectors, events))
    assert [a.id for a in alerts] == ["e1", "e1", "end", "end"]
    assert first.seen == second.seen == ["e1", "e2"]
