"""UploadSink: the agent's spool delivered to the manager.

Implements the agent's :class:`~provarmor.agent.sinks.Sink` protocol. Each spool batch is
uploaded with its spool position's sequence number as ``X-Batch-Sequence``; the position
counts as committed only once the manager acknowledged it. After an outage or a restart the
spool delivers again what was not acknowledged, and the manager answers a batch it already
stored as a duplicate: no loss, no duplicate.

:meth:`UploadSink.committed` asks the manager for the agent's acknowledged sequence (the
truth); when the manager cannot be reached it falls back to the last acknowledgement seen,
kept in a small file beside the spool. :meth:`UploadSink.write` raises
:class:`~provarmor.manager.client.UplinkError` when the manager stays unreachable through
the client's retries; the batch then stays unacknowledged in the spool. With a
:class:`CommandRunner`, each status report also fetches, runs and reports the response
commands of the agent's host.

The manager and the agent are sibling layers that may not import each other, so the sink
does not name the spool's position type: the caller hands it in (``make_position``, e.g.
``lambda sequence: SpoolPosition(sequence=sequence)``), and any position with a
``sequence`` is accepted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from provarmor.manager.client import ManagerClient, UplinkError
from provarmor.manager.command_runner import CommandRunner
from provarmor.model.event import Event


class Position(Protocol):
    @property
    def sequence(self) -> int:
        """Number of the next event after the batch (the spool's ``SpoolPosition``)."""


P = TypeVar("P", bound=Position)


class UploadSink(Generic[P]):
    name = "manager"

    def __init__(
        self,
        client: ManagerClient,
        *,
        state_file: Path,
        make_position: Callable[[int], P],
        commands: CommandRunner | None = None,
    ) -> None:
        self.client = client
        self.commands = commands
        self._make_position = make_position
        self.state_file = state_file
        self._acked = self._load()
        self.uploaded_batches = 0
        self.duplicate_batches = 0

    def _load(self) -> int:
        try:
            return int(json.loads(self.state_file.read_text())["acked_sequence"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def _remember(self, sequence: int) -> None:
        self._acked = sequence
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        temporary.write_text(json.dumps({"acked_sequence": sequence}))
        os.replace(temporary, self.state_file)

    def committed(self) -> P | None:
        try:
            acked = self.client.acked_sequence()
        except UplinkError:
            acked = self._acked
        else:
            if acked != self._acked:
                self._remember(acked)
        return self._make_position(acked) if acked else None

    def report_status(self, status: dict[str, object]) -> None:
        """Forward the agent's sensor health and drop counters to the manager, then (with a
        command runner) run and report the response commands waiting for this host."""
        if self.commands is not None:
            counters = status.get("counters")
            mine = {f"response.{key}": value for key, value in self.commands.counters.items()}
            status = status | {"counters": (counters if isinstance(counters, dict) else {}) | mine}
        self.client.report_status(status)
        if self.commands is not None:
            self.commands.poll()

    def write(self, events: list[Event], position: P) -> None:
        if position.sequence <= self._acked:
            return  # the manager has it already (acknowledged before a restart)
        ack = self.client.upload(position.sequence, events)
        if ack.duplicate:
            self.duplicate_batches += 1
        else:
            self.uploaded_batches += 1
        self._remember(max(ack.acked_sequence, position.sequence))

    def close(self) -> None:
        self.client.close()
