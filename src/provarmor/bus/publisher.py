"""The agent's side of the bus: spool batches published to JetStream, committed on the ack.

:class:`BusPublisher` is a synchronous front over one NATS connection (its event loop runs
in a thread of its own, so the agent's synchronous sink loop can call it). ``publish`` keeps
up to ``window`` batches in flight, one per agent: an agent's next batch is sent only after
JetStream acknowledged the one before, so a lost publish never lets a later batch of the
same host into the stream ahead of it (the worker would then answer the re-sent earlier
batch as a duplicate: a loss). It returns how many were acknowledged (per agent, a prefix of
its batches); a caller commits its position only up to there. A broker that cannot be
reached, or that does not answer within ``ack_timeout_s``, fails the publish (counted in
``failures``); the batches stay with the caller and are sent again later, where
``Nats-Msg-Id`` makes JetStream store them once.

:class:`BusSink` is the agent's :class:`~provarmor.agent.sinks.Sink` on the bus: the spool
position is committed (a small state file beside the spool) only after the ack.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.js.errors import Error as JetStreamError

from provarmor.bus.credentials import Credentials
from provarmor.bus.message import BatchMessage, batch_message
from provarmor.bus.stream import STREAM, StreamLayout, connect, ensure_stream
from provarmor.model.errors import StorageError
from provarmor.model.event import Event

T = TypeVar("T")


class BusUnavailable(StorageError):
    """JetStream did not acknowledge a publish (broker down, slow or full)."""


def run_on_loop(
    loop: asyncio.AbstractEventLoop,
    coroutine: Coroutine[object, object, T],
    *,
    timeout: float,
    location: str,
) -> T:
    """``coroutine``'s result, run on ``loop`` (a bus client's own thread); no answer within
    ``timeout`` or a bus error raises :class:`BusUnavailable` naming ``location``. Cancelled
    counts too: the client's own task ended under it (closing a connection whose broker went
    away cancels its pending flush)."""
    future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
    try:
        return future.result(timeout)
    except (TimeoutError, CancelledError, nats.errors.Error, JetStreamError, OSError) as exc:
        future.cancel()
        raise BusUnavailable(
            f"{type(exc).__name__}: {exc or 'no answer'}", location=location
        ) from exc


class BusPublisher:
    def __init__(  # noqa: PLR0913 (the bus, its user and TLS, and the publishing limits)
        self,
        url: str,
        *,
        layout: StreamLayout | None = None,
        window: int = 8,
        ack_timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        credentials: Credentials | None = None,
        ca_file: Path | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        self.url = url
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.published = 0
        """Batches JetStream acknowledged as new."""
        self.duplicates = 0
        """Batches JetStream already had (acknowledged as duplicates)."""
        self.failures = 0
        """Publishes that got no acknowledgement (each batch is sent again later)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._layout = layout or StreamLayout()
        self._connect_timeout_s = connect_timeout_s
        self._client: Client | None = None
        self._credentials = credentials
        self._ca_file = ca_file
        self._connecting = threading.Lock()

    def _connection(self) -> Client:
        """The connection, made on first use (a broker down when the agent starts only
        delays its first publish); afterwards it reconnects by itself. Threads may publish
        side by side: the first makes the connection, the others wait for it."""
        with self._connecting:
            return self._client or self._connect()

    def _connect(self) -> Client:
        client = self._run(
            connect(
                self.url,
                name="provarmor-agent",
                credentials=self._credentials,
                ca_file=self._ca_file,
            ),
            timeout=self._connect_timeout_s,
        )
        js = client.jetstream()
        # an agent user of a cluster (credentials) may not make the stream: the workers do,
        # with the partition count only they know; it checks that the stream is there
        check = js.stream_info(STREAM) if self._credentials else ensure_stream(js, self._layout)
        try:
            self._run(check, timeout=self._connect_timeout_s)
        except BusUnavailable:
            self._run(client.close(), timeout=self._connect_timeout_s)
            raise
        self._client = client
        return client

    def _run(self, coroutine: Coroutine[object, object, T], *, timeout: float) -> T:
        return run_on_loop(self._loop, coroutine, timeout=timeout, location=self.url)

    def publish(self, messages: Sequence[BatchMessage]) -> int:
        """Publish ``messages`` (``window`` in flight at most, each agent's in order); returns
        how many were acknowledged. Raises :class:`BusUnavailable` when none was."""
        try:
            client = self._connection()
            acked = self._run(
                self._publish(client, messages), timeout=self.ack_timeout_s * len(messages) + 5
            )
        except BusUnavailable:
            self.failures += 1
            raise
        if acked < len(messages):
            self.failures += 1
            if acked == 0:
                raise BusUnavailable(
                    f"no acknowledgement for batch {messages[0].msg_id}", location=self.url
                )
        return acked

    async def _publish(self, client: Client, messages: Sequence[BatchMessage]) -> int:
        js = client.jetstream(timeout=self.ack_timeout_s)
        gate = asyncio.Semaphore(self.window)
        lanes: dict[str, list[BatchMessage]] = {}
        for message in messages:
            lanes.setdefault(message.agent_id, []).append(message)

        async def lane(batches: list[BatchMessage]) -> int:
            """One agent's batches, each after the one before it was acknowledged."""
            acked = 0
            for message in batches:
                headers, payload = message.encode()
                async with gate:
                    try:
                        ack = await js.publish(message.subject, payload, headers=headers)
                    except (nats.errors.Error, JetStreamError, OSError):
                        return acked
                if ack.duplicate:
                    self.duplicates += 1
                else:
                    self.published += 1
                acked += 1
            return acked

        return sum(await asyncio.gather(*(lane(batches) for batches in lanes.values())))

    def counters(self) -> dict[str, int]:
        return {
            "bus.published": self.published,
            "bus.duplicates": self.duplicates,
            "bus.failures": self.failures,
        }

    def close(self) -> None:
        try:
            if self._client is not None:
                self._run(self._client.close(), timeout=10)
        except BusUnavailable:
            pass  # closing a connection to a broker that is gone
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class Position(Protocol):
    @property
    def sequence(self) -> int:
        """Number of the next event after the batch (the spool's ``SpoolPosition``)."""


P = TypeVar("P", bound=Position)


class BusSink(Generic[P]):
    """Spool batches to the bus as one agent of one host; the position is committed on the
    acknowledgement. ``make_position`` builds the spool's position type (the bus may not
    import the agent)."""

    name = "bus"

    def __init__(
        self,
        publisher: BusPublisher,
        *,
        agent_id: str,
        host_id: str,
        state_file: Path,
        make_position: Callable[[int], P],
    ) -> None:
        self.publisher = publisher
        self.agent_id = agent_id
        self.host_id = host_id
        self.state_file = state_file
        self._make_position = make_position
        self._acked = self._load()

    def _load(self) -> int:
        try:
            return int(json.loads(self.state_file.read_text())["acked_sequence"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def committed(self) -> P | None:
        return self._make_position(self._acked) if self._acked else None

    def write(self, events: list[Event], position: P) -> None:
        if position.sequence <= self._acked:
            return
        message = batch_message(
            events,
            agent_id=self.agent_id,
            host_id=self.host_id,
            sequence=position.sequence,
            after=self._acked,
        )
        self.publisher.publish([message])
        self._acked = position.sequence
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        temporary.write_text(json.dumps({"acked_sequence": position.sequence}))
        os.replace(temporary, self.state_file)

    def close(self) -> None:
        self.publisher.close()
