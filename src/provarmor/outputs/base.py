"""The Output seam: where findings go. An output takes each alert and each incident version
as it is raised, and is closed at the end; what it does with them (which format, which file
or service) is its own business. ``detect``, the agent and the manager all write their
findings through outputs, so an output or a format added here is available to all three.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from provarmor.model.alert import Alert
from provarmor.model.incident import Incident


@runtime_checkable
class Output(Protocol):
    """Takes findings, one at a time, in the order they are raised."""

    def alert(self, alert: Alert) -> None:
        """Write one alert (an output that does not take alerts ignores it)."""

    def incident(self, incident: Incident) -> None:
        """Write one version of an incident; a later version of the same id supersedes it
        (an output that does not take incidents ignores it)."""

    def close(self) -> None:
        """Flush and release what the output holds; nothing is written after."""
