"""Both ends of the command subjects (see :mod:`provarmor.bus.commands`).

:class:`CommandPublisher` is the manager's synchronous front (its event loop runs in a
thread of its own, so the API's request handlers can call it): a publish returns once
JetStream has stored the command, or raises :class:`BusUnavailable`.

:class:`CommandInbox` is the agent's asynchronous end: its durable consumer, pulled.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TypeVar

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from provarmor.bus.commands import (
    ACK_WAIT_S,
    STREAM,
    CommandMessage,
    consumer_config,
    ensure_agent_consumer,
    ensure_command_stream,
)
from provarmor.bus.credentials import Credentials
from provarmor.bus.publisher import BusUnavailable, run_on_loop
from provarmor.bus.signing import SigningKey
from provarmor.bus.stream import connect

T = TypeVar("T")


class CommandPublisher:
    """Publishes as the user of ``credentials`` (the manager's, on a secured bus), over
    TLS trusting ``ca_file`` when given; makes the command stream, and on a secured bus
    each agent's consumer (an agent's user may not; on an open bus each agent makes its
    own, with its own ``ack_wait_s``)."""

    def __init__(  # noqa: PLR0913 (where the bus is, as whom, how long to wait)
        self,
        url: str,
        key: SigningKey,
        *,
        credentials: Credentials | None = None,
        ca_file: Path | None = None,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.key = key
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.published = 0
        self.failures = 0
        self._credentials = credentials
        self._ca_file = ca_file
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coroutine: Coroutine[object, object, T], *, timeout: float) -> T:
        return run_on_loop(self._loop, coroutine, timeout=timeout, location=self.url)

    def _connection(self) -> Client:
        """Made on first use; afterwards it reconnects by itself."""
        if self._client is None:
            client = self._run(
                connect(
                    self.url,
                    name="provarmor-manager-commands",
                    credentials=self._credentials,
                    ca_file=self._ca_file,
                ),
                timeout=self.connect_timeout_s,
            )
            try:
                self._run(ensure_command_stream(client.jetstream()), timeout=self.connect_timeout_s)
            except BusUnavailable:
                self._run(client.close(), timeout=self.connect_timeout_s)
                raise
            self._client = client
        return self._client

    def _consumer(self, js: JetStreamContext, agent_id: str) -> None:
        """Made each time (commands are few): one lost with the bus's store comes back."""
        if self._credentials is not None:
            self._run(ensure_agent_consumer(js, agent_id), timeout=self.timeout_s)

    def prepare(self, agent_id: str) -> None:
        """Make the consumer of ``agent_id`` on a secured bus (a no-op on an open one);
        raises :class:`BusUnavailable`."""
        with self._lock:
            self._consumer(self._connection().jetstream(timeout=self.timeout_s), agent_id)

    def publish(self, message: CommandMessage, *, ttl_s: int, queued: int) -> None:
        """Sign and store ``message`` on its agent's subject (kept ``ttl_s`` seconds),
        after making (or keeping) the agent's consumer on a secured bus."""
        subject, headers, payload = message.encode(self.key, ttl_s=ttl_s, queued=queued)
        try:
            with self._lock:
                js = self._connection().jetstream(timeout=self.timeout_s)
                self._consumer(js, message.agent_id)
                self._run(js.publish(subject, payload, headers=headers), timeout=self.timeout_s)
        except BusUnavailable:
            self.failures += 1
            raise
        self.published += 1

    def close(self) -> None:
        try:
            if self._client is not None:
                self._run(self._client.close(), timeout=10)
        except BusUnavailable:
            pass  # the broker is gone: nothing left to flush
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


class NoConsumer(BusUnavailable):
    """The agent's consumer is not there yet, and this agent may not make it."""


class CommandInbox:
    """One agent's commands: ``fetch`` returns the waiting messages (none after
    ``wait_s``); each is acknowledged, nak'ed or terminated by the caller.

    Without ``credentials`` (an open bus) it makes the stream and its consumer (with
    ``ack_wait_s``). With them (a secured bus, where the agent's user may not) it binds to
    the consumer the manager made (whose ack wait is the manager's), or says it is not
    there yet (:class:`NoConsumer`)."""

    def __init__(
        self,
        url: str,
        agent_id: str,
        *,
        ack_wait_s: float = ACK_WAIT_S,
        credentials: Credentials | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.url = url
        self.agent_id = agent_id
        self.ack_wait_s = ack_wait_s
        self._credentials = credentials
        self._ca_file = ca_file
        self._client: Client | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        if self._subscription is None:
            if self._client is None:
                self._client = await connect(
                    self.url,
                    name=f"provarmor-agent-{self.agent_id}",
                    credentials=self._credentials,
                    ca_file=self._ca_file,
                )
            js = self._client.jetstream()
            config = consumer_config(self.agent_id, ack_wait_s=self.ack_wait_s)
            assert config.durable_name is not None
            if self._credentials is None:
                await ensure_command_stream(js)
                await ensure_agent_consumer(js, self.agent_id, ack_wait_s=self.ack_wait_s)
            else:
                try:
                    await js.consumer_info(STREAM, config.durable_name)
                except NotFoundError:
                    raise NoConsumer(
                        f"no consumer {config.durable_name} on stream {STREAM} yet (the "
                        "manager makes it at enrolment or with the first command)",
                        location=self.url,
                    ) from None
            self._subscription = await js.pull_subscribe_bind(config.durable_name, stream=STREAM)
        return self._subscription

    async def fetch(self, *, batch: int = 10, wait_s: float = 1.0) -> list[Msg]:
        """The waiting commands (an empty list when none came within ``wait_s``); raises
        :class:`BusUnavailable` when the bus cannot be reached."""
        try:
            subscription = await self._subscribe()  # no answer here is an error too
            try:
                return await subscription.fetch(batch, timeout=wait_s)
            except TimeoutError:  # nats' own, or asyncio's when the no-wait probe's
                return []  # answer came just as the wait ran out (seen on a loaded machine)
        except (nats.errors.Error, JetStreamError, OSError) as exc:
            raise BusUnavailable(f"{type(exc).__name__}: {exc}", location=self.url) from exc

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(nats.errors.Error, OSError):  # the broker is gone
                await self._client.close()
            self._client = None
            self._subscription = None
