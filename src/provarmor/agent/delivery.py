"""Spool -> one sink: the agent's delivery step (also what the fleet benchmark's simulated
agents run).

Each batch read from the spool is written to the sink and, once the sink committed it, the
sink's spool position is acknowledged. A write that fails leaves the batch in the spool for
the next cycle; but it may have been committed all the same (the manager stored the upload
and its answer was lost; JetStream stored the publish and its acknowledgement timed out).
Receivers recognise a batch by its end sequence, so the batch is sent again with exactly the
same bounds (:meth:`Spool.read` ``until``): a longer batch read afresh would carry the
committed events again under a new end sequence, and they would be stored twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from provarmor.agent.sinks import Sink
from provarmor.agent.spool import Spool
from provarmor.model.errors import StorageError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Delivery:
    spool: Spool
    sink: Sink
    batch_events: int
    delivered: int = 0
    """Events the sink committed."""
    errors: int = 0
    """Failed writes (each batch stays in the spool and is sent again)."""
    unconfirmed: int | None = None
    """The end sequence of the batch whose write failed, until it is committed."""

    def run(self) -> None:
        """Deliver until the sink has everything in the spool or a write fails."""
        while True:
            batch = self.spool.read(self.sink.name, self.batch_events, until=self.unconfirmed)
            if not batch.events:
                if self.unconfirmed is None:
                    return
                self.unconfirmed = None  # nothing left below it (evicted): read on
                continue
            try:
                self.sink.write(batch.events, batch.position)
            except StorageError as exc:
                self.errors += 1
                self.unconfirmed = batch.position.sequence
                log.warning("sink %s: %s (will retry)", self.sink.name, exc)
                return
            self.unconfirmed = None
            self.spool.ack(self.sink.name, batch.position)
            self.delivered += len(batch.events)
