"""The manager's side of commands on the bus (cluster mode): an executed or undone action's
command goes, signed, to the subject of its host's agent (see
:mod:`provarmor.bus.commands`); the agent reports the result over its HTTPS uplink.

The agent is the host's agent seen last (then enrolled last): a host re-enrolled leaves its
old agent behind, and a command must run on one agent only (each keeps its own trail).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from provarmor.manager.actions import ActionRecord
from provarmor.manager.store import FindingsStore
from provarmor.model.time_units import NS_PER_SECOND

if TYPE_CHECKING:  # nats-py comes with the fleet extra: imported only in cluster mode
    from provarmor.bus.command_channel import CommandPublisher

log = logging.getLogger(__name__)


class NoAgent(LookupError):
    """The host has no enrolled agent to send a command to."""


@dataclass(slots=True)
class CommandSender:
    publisher: CommandPublisher

    def prepare(self, agent_id: str) -> None:
        """Make a newly enrolled agent's consumer, so that it can wait for commands before
        the first one is sent (its bus user may not make it). When the bus is away, logged:
        the first command to the agent makes it."""
        from provarmor.bus.publisher import BusUnavailable

        try:
            self.publisher.prepare(agent_id)
        except BusUnavailable as exc:
            log.warning("command consumer of agent %s not made yet: %s", agent_id, exc)

    def send(self, store: FindingsStore, record: ActionRecord, *, now_ns: int) -> str:
        """Publish the queued command of ``record``; returns the agent it went to. Raises
        :class:`NoAgent`, or :class:`~provarmor.bus.publisher.BusUnavailable` when
        JetStream did not store it."""
        from provarmor.bus.commands import CommandMessage

        agents = store.agents_of(record.host)
        if not agents:
            raise NoAgent(record.host)
        agent = max(agents, key=lambda found: (found.last_seen_ns, found.enrolled_ns))
        command = record.to_command()
        message = CommandMessage(
            agent_id=agent.id, command_id=command.id, body=msgspec.json.encode(command)
        )
        ttl_s = math.ceil((record.expires_ns - now_ns) / NS_PER_SECOND)
        self.publisher.publish(message, ttl_s=ttl_s, queued=record.updated_ns)
        return agent.id

    def close(self) -> None:
        self.publisher.close()
