"""Response commands on the bus (cluster mode): manager -> one agent, signed, format 1.

Each agent has its own subject ``provarmor.commands.<agent id>`` in the file-backed stream
``PROVARMOR_COMMANDS`` (work-queue retention: a message leaves the stream when the agent
acknowledges it) and its own durable pull consumer ``agent-<agent id>``. On a secured bus
the manager makes it (at enrolment, and again before each command) and the agent may only
look it up, pull from it and acknowledge; on an open bus the agent makes it. A command for an
agent that is offline waits in the stream until the agent comes back or its time to live
(``Nats-TTL``, the command's expiry) runs out. The headers::

    Provarmor-Format: 1                 the message format version
    Provarmor-Agent: <agent id>         the only agent that may run it
    Provarmor-Command: <command id>     the action's command id
    Provarmor-Key: <key id>             which manager key signed it
    Provarmor-Signature: <base64>       Ed25519 over "provarmor-command-1\\n" + agent id +
                                        "\\n" + command id + "\\n" + body
    Nats-Msg-Id: <command id>:<n>       JetStream's duplicate key (n: the manager's queueing)
    Nats-TTL: <seconds>s                removed from the stream when the command expires

The body is the command as JSON; this layer treats it as opaque bytes (the manager layer
decodes it). The signature binds the body to one agent, so a command signed for one agent
does not run on another, and no one without the manager's key can make one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from provarmor.bus.credentials import COMMAND_STREAM, command_consumer
from provarmor.bus.signing import SigningKey, VerifyKey
from provarmor.model.errors import ConfigError, ParseError

FORMAT_VERSION = 1
STREAM = COMMAND_STREAM
SUBJECT_PREFIX = "provarmor.commands"
MAX_AGE_S = 8 * 86_400.0
"""Longer than any command's expiry (the manager allows 7 days)."""
DUPLICATE_WINDOW_S = 600.0
MIN_TTL_S = 1
ACK_WAIT_S = 120.0
"""How long a delivered command may stay unacknowledged before it comes again."""

FORMAT = "Provarmor-Format"
AGENT = "Provarmor-Agent"
COMMAND = "Provarmor-Command"
KEY = "Provarmor-Key"
SIGNATURE = "Provarmor-Signature"
MSG_ID = "Nats-Msg-Id"
TTL = "Nats-TTL"

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


class ForgedCommand(ParseError):
    """A command message that the manager did not sign for this agent."""


def agent_token(agent_id: str) -> str:
    """The agent's subject token (agent ids are hex; anything else is refused)."""
    if not _TOKEN.fullmatch(agent_id):
        raise ConfigError(f"agent id {agent_id!r} cannot name a bus subject", location="agent id")
    return agent_id


def subject_for(agent_id: str) -> str:
    return f"{SUBJECT_PREFIX}.{agent_token(agent_id)}"


def stream_config() -> StreamConfig:
    return StreamConfig(
        name=STREAM,
        subjects=[f"{SUBJECT_PREFIX}.*"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=MAX_AGE_S,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_msg_ttl=True,
    )


def consumer_config(agent_id: str, *, ack_wait_s: float = ACK_WAIT_S) -> ConsumerConfig:
    """The agent's durable consumer: explicit acks; a command not acknowledged within
    ``ack_wait_s`` (the agent died while running it) is delivered again."""
    return ConsumerConfig(
        durable_name=command_consumer(agent_token(agent_id)),
        filter_subject=subject_for(agent_id),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_deliver=-1,
    )


async def ensure_command_stream(js: JetStreamContext) -> None:
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(stream_config())


async def ensure_agent_consumer(
    js: JetStreamContext, agent_id: str, *, ack_wait_s: float = ACK_WAIT_S
) -> None:
    """Make (or keep, when it exists with this configuration) the agent's consumer."""
    await js.add_consumer(STREAM, consumer_config(agent_id, ack_wait_s=ack_wait_s))


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandMessage:
    agent_id: str
    command_id: str
    body: bytes

    def signed_bytes(self) -> bytes:
        head = f"provarmor-command-{FORMAT_VERSION}\n{self.agent_id}\n{self.command_id}\n"
        return head.encode() + self.body

    def encode(
        self, key: SigningKey, *, ttl_s: int, queued: int
    ) -> tuple[str, dict[str, str], bytes]:
        """Subject, headers and payload, signed with ``key``; ``queued`` tells apart two
        queueings of the same command id (an undo asked for again)."""
        signature = base64.b64encode(key.sign(self.signed_bytes())).decode()
        headers = {
            FORMAT: str(FORMAT_VERSION),
            AGENT: self.agent_id,
            COMMAND: self.command_id,
            KEY: key.verify_key.id,
            SIGNATURE: signature,
            MSG_ID: f"{self.command_id}:{queued}",
            TTL: f"{max(ttl_s, MIN_TTL_S)}s",
        }
        return subject_for(self.agent_id), headers, self.body


def open_message(
    headers: Mapping[str, str] | None,
    payload: bytes,
    *,
    agent_id: str,
    trusted: VerifyKey,
    location: str,
) -> CommandMessage:
    """The command of a message read from the agent's subject. An unknown format or a
    missing header raises :class:`ParseError`; a message for another agent, signed by
    another key or with a signature that does not verify raises :class:`ForgedCommand`."""
    found = dict(headers or {})
    version = found.get(FORMAT)
    if version != str(FORMAT_VERSION):
        raise ParseError(
            f"command format {version!r} is not {FORMAT_VERSION} (header {FORMAT})",
            location=location,
        )
    for name in (AGENT, COMMAND, KEY, SIGNATURE):
        if not found.get(name):
            raise ForgedCommand(f"header {name} is missing", location=location)
    if found[AGENT] != agent_id:
        raise ForgedCommand(
            f"the command is for agent {found[AGENT]!r}, not this one", location=location
        )
    if found[KEY] != trusted.id:
        raise ForgedCommand(
            f"signed by key {found[KEY]!r}, not the manager's {trusted.id}", location=location
        )
    try:
        signature = base64.b64decode(found[SIGNATURE], validate=True)
    except (binascii.Error, ValueError):
        raise ForgedCommand(f"header {SIGNATURE} is not base64", location=location) from None
    message = CommandMessage(agent_id=agent_id, command_id=found[COMMAND], body=payload)
    if not trusted.verifies(message.signed_bytes(), signature):
        raise ForgedCommand("the signature does not verify", location=location)
    return message
