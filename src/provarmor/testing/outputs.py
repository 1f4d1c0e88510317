"""A fake output for tests of anything that writes findings (``detect``, the agent, the
manager): it keeps what it was given, in order, and whether it was closed."""

from __future__ import annotations

from provarmor.model.alert import Alert
from provarmor.model.incident import Incident


class RecordingOutput:
    """Keeps every alert and incident version it takes. ``fail``: raise this from every write
    (an output whose disk or service is gone)."""

    def __init__(self, *, fail: OSError | None = None) -> None:
        self.alerts: list[Alert] = []
        self.incidents: list[Incident] = []
        self.closed = False
        self.fail = fail

    def alert(self, alert: Alert) -> None:
        self._check()
        self.alerts.append(alert)

    def incident(self, incident: Incident) -> None:
        self._check()
        self.incidents.append(incident)

    def close(self) -> None:
        self.closed = True

    def _check(self) -> None:
        if self.closed:
            raise ValueError("write to a closed output")
        if self.fail is not None:
            raise self.fail
