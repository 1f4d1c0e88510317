"""The JetStream stream of event batches and its host partitions.

One file-backed stream (``PROVARMOR_EVENTS``) takes ``provarmor.events.<host token>``. The
stream's subject transform stores each message under ``provarmor.partition.<p>.<host token>``
where ``p`` is the server's deterministic hash of the host token over ``partitions``: every
batch of a host lands in the same partition, and one durable consumer per partition
(``worker-p<p>``) hands them to one worker, in order. The partition count is fixed when the
stream is made (kept in its metadata; a worker started with another count is refused).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from provarmor.bus.credentials import Credentials
from provarmor.bus.message import SUBJECT_PREFIX
from provarmor.model.errors import ConfigError

STREAM = "PROVARMOR_EVENTS"
PARTITION_PREFIX = "provarmor.partition"
DUPLICATE_WINDOW_S = 600.0
"""How long JetStream remembers a ``Nats-Msg-Id``; a batch re-sent later is still stored
once, by the findings store's per-agent sequence."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamLayout:
    partitions: int = 4
    max_bytes: int = 8 * 1024**3
    """The stream's disk limit. The stream keeps batches after their acknowledgement (they
    are the log a worker replays from its host's last checkpoint); when full, JetStream's
    default discard policy drops the oldest batches. Only a worker more than ``max_bytes``
    behind would lose unanalysed batches (each batch names the one before it, so the worker
    that sees the gap logs and counts them: :mod:`provarmor.manager.bus_worker`), and a host
    whose replay batches are gone is rebuilt from its graph (logged and counted)."""

    def consumer(self, partition: int, *, in_flight: int = 1) -> ConsumerConfig:
        """The durable consumer of one partition: explicit acks, ``in_flight`` batches
        delivered and not yet acknowledged at most. With more than one, a worker restarted
        after a kill gets the next batches at once and the killed one's unacknowledged
        batches only after ``ack_wait``: out of order (the worker takes a host's missing
        batches from the stream first: :meth:`~provarmor.manager.ingest.Ingestor.ingest_many`)."""
        if not 0 <= partition < self.partitions:
            raise ConfigError(
                f"partition {partition} is outside 0..{self.partitions - 1}", location="--partition"
            )
        return ConsumerConfig(
            durable_name=f"worker-p{partition}",
            filter_subject=f"{PARTITION_PREFIX}.{partition}.*",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=-1,
            max_ack_pending=in_flight,
        )


async def connect(
    url: str, *, name: str, credentials: Credentials | None = None, ca_file: Path | None = None
) -> Client:
    """A connection that reconnects for ever (an outage only delays), as the user of
    ``credentials`` when given, over TLS trusting ``ca_file`` when given."""
    options = credentials.connect_options() if credentials is not None else {}
    if ca_file is not None:
        options["tls"] = ssl.create_default_context(cafile=str(ca_file))
    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
        **options,
    )


async def ensure_stream(js: JetStreamContext, layout: StreamLayout) -> None:
    """Make the stream, or check that the existing one has ``layout``'s partition count."""
    try:
        info = await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=STREAM,
                subjects=[f"{SUBJECT_PREFIX}.*"],
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_bytes=layout.max_bytes,
                discard_new_per_subject=False,
                subject_transform=SubjectTransform(
                    src=f"{SUBJECT_PREFIX}.*",
                    dest=f"{PARTITION_PREFIX}.{{{{partition({layout.partitions},1)}}}}.{{{{wildcard(1)}}}}",
                ),
                metadata={"provarmor.partitions": str(layout.partitions)},
            )
        )
        return
    existing = (info.config.metadata or {}).get("provarmor.partitions", "")
    if existing != str(layout.partitions):
        raise ConfigError(
            f"stream {STREAM} has {existing or 'no'} partitions, not {layout.partitions}",
            location="--partitions",
        )
