"""The agent's side of commands on the bus (cluster mode).

:class:`BusCommandListener` is a thread that pulls the agent's commands from its durable
consumer, runs each through the :class:`~provarmor.manager.command_runner.CommandRunner`
(allow-list, expiry and run-once by the responder's trail included) and reports the result
over the HTTPS uplink: that channel proves the agent's identity (its credential) and tells
the agent that the manager recorded the result, which the bus could do only with
per-agent bus credentials the fleet does not hand out yet. A command is acknowledged on the
bus only after its result was reported; otherwise it is delivered again after a delay and
answered from the trail, not run twice.

Only commands the manager signed for this agent run: the key comes from the manager over
the authenticated uplink (kept in the state directory for restarts while the manager is
away); a message not signed by it, or signed for another agent, is terminated (never
delivered again) and counted in ``commands.forged``; one that cannot be read in
``commands.unreadable``. Nothing is pulled before the key is known: commands wait in the
stream.

:class:`BusUplinkSink` is the cluster-mode agent's sink: batches to the bus
(:class:`~provarmor.bus.publisher.BusSink`), status to the manager, commands from the bus.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Generic, TypeVar

import msgspec
from nats.aio.msg import Msg

from provarmor.bus.command_channel import CommandInbox
from provarmor.bus.commands import ForgedCommand, open_message
from provarmor.bus.publisher import BusSink, BusUnavailable, Position
from provarmor.bus.signing import VerifyKey
from provarmor.manager.actions import Command
from provarmor.manager.client import ManagerClient, UplinkError
from provarmor.manager.command_runner import CommandRunner
from provarmor.model.errors import ConfigError, ParseError
from provarmor.model.event import Event

log = logging.getLogger(__name__)

RETRY_S = 5.0
"""Delay before a command whose result was not reported comes again; also the pause after
the manager or the bus could not be reached."""

P = TypeVar("P", bound=Position)


class BusCommandListener:
    def __init__(
        self,
        inbox: CommandInbox,
        runner: CommandRunner,
        *,
        key_file: Path,
        retry_s: float = RETRY_S,
    ) -> None:
        self.inbox = inbox
        self.runner = runner
        self.key_file = key_file
        self.retry_s = retry_s
        self._trusted: VerifyKey | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name="bus-commands", daemon=True
        )

    @property
    def client(self) -> ManagerClient:
        return self.runner.client

    def _count(self, key: str) -> None:
        self.runner.counters[key] = self.runner.counters.get(key, 0) + 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def trusted_key(self) -> VerifyKey | None:
        """The manager's command key: asked for once, else the one kept from before."""
        if self._trusted is not None:
            return self._trusted
        location = str(self.key_file)
        try:
            text = self.client.command_key()
        except UplinkError as exc:
            if not self.key_file.exists():
                log.warning("bus commands wait: the manager's command key is unknown: %s", exc)
                self._count("commands.key_unavailable")
                return None
            text = self.key_file.read_text().strip()
        else:
            self.key_file.write_text(text + "\n")
        try:
            self._trusted = VerifyKey.from_text(text, location=location)
        except ConfigError as exc:
            log.error("bus commands wait: %s", exc)
            self._count("commands.key_unavailable")
        return self._trusted

    async def _run(self) -> None:
        try:
            while not self._stop.is_set():
                await asyncio.to_thread(self._tick)
                key = await asyncio.to_thread(self.trusted_key)
                if key is None:
                    await self._pause(self.retry_s)
                    continue
                try:
                    messages = await self.inbox.fetch(wait_s=0.5)
                except BusUnavailable as exc:
                    log.warning("bus commands: %s (retrying)", exc)
                    self._count("commands.bus_unavailable")
                    await self._pause(min(self.retry_s, 1.0))
                    continue
                for message in messages:
                    await self.handle(message, key)
        finally:
            await self.inbox.close()

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the listener is stopped meanwhile."""
        await asyncio.to_thread(self._stop.wait, seconds)

    def _tick(self) -> None:
        if self.runner.responder.tick() is not None:
            self._count("isolation.released")

    def read(self, message: Msg, key: VerifyKey) -> Command:
        """The command of a message; :class:`ForgedCommand` or :class:`ParseError`."""
        location = f"{message.subject} #{message.metadata.sequence.stream}"
        opened = open_message(
            message.headers,
            message.data,
            agent_id=self.inbox.agent_id,
            trusted=key,
            location=location,
        )
        try:
            command = msgspec.json.decode(opened.body, type=Command)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ParseError(f"not a command: {exc}", location=location) from None
        if command.id != opened.command_id:
            raise ForgedCommand(
                f"the body is command {command.id!r}, the signed header {opened.command_id!r}",
                location=location,
            )
        return command

    async def handle(self, message: Msg, key: VerifyKey) -> None:
        try:
            command = self.read(message, key)
        except ForgedCommand as exc:
            log.warning("bus command refused: %s", exc)
            self._count("commands.forged")
            await message.term()
            return
        except ParseError as exc:
            log.warning("bus command unreadable: %s", exc)
            self._count("commands.unreadable")
            await message.term()
            return
        if await asyncio.to_thread(self.execute, command):
            await message.ack()
        else:
            await message.nak(delay=self.retry_s)

    def execute(self, command: Command) -> bool:
        """Say it was received, run it (or answer from the trail), report the result;
        whether the report got through."""
        try:
            self.client.command_delivered(command.id)
        except UplinkError as exc:
            log.warning("receipt of command %s not reported: %s", command.id, exc)
            self._count("commands.receipt_failed")
        result = self.runner.run(command)
        try:
            self.client.report_result(command.id, result)
        except UplinkError as exc:
            log.warning("result of command %s not reported: %s", command.id, exc)
            self._count("commands.report_failed")
            return False
        return True


class BusUplinkSink(Generic[P]):
    """Batches to the bus, status to the manager (with the listener's and publisher's
    counters), commands from the bus (the listener, started by the caller)."""

    name = "bus"

    def __init__(
        self, sink: BusSink[P], *, status_client: ManagerClient, listener: BusCommandListener
    ) -> None:
        self.sink = sink
        self.status_client = status_client
        self.listener = listener

    def committed(self) -> P | None:
        return self.sink.committed()

    def write(self, events: list[Event], position: P) -> None:
        self.sink.write(events, position)

    def report_status(self, status: dict[str, object]) -> None:
        counters = status.get("counters")
        mine = {f"response.{key}": value for key, value in self.listener.runner.counters.items()}
        mine |= {key: value for key, value in self.sink.publisher.counters().items()}
        merged = (counters if isinstance(counters, dict) else {}) | mine
        self.status_client.report_status(status | {"counters": merged})

    def close(self) -> None:
        self.listener.stop()
        self.sink.close()
        self.listener.client.close()
        self.status_client.close()
