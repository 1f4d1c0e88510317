"""Spool -> one sink: the agent's delivery step (also what the fleet benchmark's simulated
agents run).

Each batch read from the spool is written to the sink and, once the sink committed it, the
sink's spool position is acknowledged. A write that fails leaves the batch in the spool for
the next cycle; but it may have been committed all the same (the manager stored the upload
and its answer was lost; JetStream stored the publish and its acknowledgement timed out).
Receivers recognise a batch by its end sequence, so the batch must be sent again with
exactly the same bounds: a longer batch read afresh would carry the committed events again
under a new end sequence, and they would be stored twice.

So the batch's end is held in the spool (:meth:`Spool.hold`, a file beside the consumer's
position) *before* the write, not kept in memory: an agent killed or restarted
between a write whose answer was lost and its retry reads the same batch again, and no
receiver has to find out on its own what the agent last sent (the HTTP uplink asks the
manager; JetStream's duplicate window and the worker's per-agent sequence only recognise a
batch sent again whole).
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

    def run(self) -> None:
        """Deliver until the sink has everything in the spool or a write fails."""
        while True:
            batch = self.spool.read(self.sink.name, self.batch_events)
            if not batch.events:
                return
            self.spool.hold(self.sink.name, batch.position)
            try:
                self.sink.write(batch.events, batch.position)
            except StorageError as exc:
                self.errors += 1
                log.warning("sink %s: %s (will retry)", self.sink.name, exc)
                return
            self.spool.ack(self.sink.name, batch.position)
            self.delivered += len(batch.events)
