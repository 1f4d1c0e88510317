"""One spool batch as a JetStream message (format version 1).

The body is the batch's events as canonical NDJSON (gzip-compressed above a size, said by
``Content-Encoding``); the headers carry what the worker needs before it reads the body::

    Provarmor-Format: 1             the message format version
    Provarmor-Agent: <agent id>     the enrolled agent that sent it
    Provarmor-Host: <host id>       the host its events belong to
    Provarmor-Sequence: <n>         the spool position's sequence after the batch
    Provarmor-After: <m>            the sequence the batch follows: the agent's batch before
                                    it ended there (optional: older agents leave it out)
    Nats-Msg-Id: <agent id>:<n>     JetStream's duplicate key (a re-sent batch is stored once)

The subject is ``provarmor.events.<host token>``: host ids are free text, so the token is a
hash of the id (subject tokens may not hold dots, spaces or wildcards).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provarmor.model.codec import encode_ndjson
from provarmor.model.errors import ParseError
from provarmor.model.event import Event

FORMAT_VERSION = 1
SUBJECT_PREFIX = "provarmor.events"
GZIP_ABOVE_BYTES = 4096

FORMAT = "Provarmor-Format"
AGENT = "Provarmor-Agent"
HOST = "Provarmor-Host"
SEQUENCE = "Provarmor-Sequence"
AFTER = "Provarmor-After"
ENCODING = "Content-Encoding"
MSG_ID = "Nats-Msg-Id"


def host_token(host_id: str) -> str:
    """The host's subject token."""
    return "h" + hashlib.sha256(host_id.encode()).hexdigest()[:24]


def subject_for(host_id: str) -> str:
    return f"{SUBJECT_PREFIX}.{host_token(host_id)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchMessage:
    agent_id: str
    host_id: str
    sequence: int
    body: bytes
    """The events as NDJSON (uncompressed)."""
    after: int | None = None
    """The sequence of the agent's batch before this one (None: not said): a worker that
    stored less from the agent lost the batches in between (the stream dropped them)."""

    @property
    def msg_id(self) -> str:
        return f"{self.agent_id}:{self.sequence}"

    @property
    def subject(self) -> str:
        return subject_for(self.host_id)

    def headers(self) -> dict[str, str]:
        headers = {
            FORMAT: str(FORMAT_VERSION),
            AGENT: self.agent_id,
            HOST: self.host_id,
            SEQUENCE: str(self.sequence),
            MSG_ID: self.msg_id,
        }
        if self.after is not None:
            headers[AFTER] = str(self.after)
        return headers

    def encode(self) -> tuple[dict[str, str], bytes]:
        """Headers and payload as they go on the bus."""
        headers = self.headers()
        if len(self.body) > GZIP_ABOVE_BYTES:
            headers[ENCODING] = "gzip"
            return headers, gzip.compress(self.body, compresslevel=5)
        return headers, self.body


def batch_message(
    events: Sequence[Event], *, agent_id: str, host_id: str, sequence: int, after: int | None = None
) -> BatchMessage:
    return BatchMessage(
        agent_id=agent_id,
        host_id=host_id,
        sequence=sequence,
        body=encode_ndjson(events),
        after=after,
    )


def _number(found: Mapping[str, str], name: str, *, location: str) -> int:
    try:
        return int(found[name])
    except ValueError:
        raise ParseError(
            f"header {name} is not a number: {found[name]!r}", location=location
        ) from None


def decode_message(
    headers: Mapping[str, str] | None, payload: bytes, *, location: str
) -> BatchMessage:
    """A message read from the bus; a missing header, an unknown format version or an
    unreadable body raises :class:`ParseError` naming ``location`` and the header."""
    found = dict(headers or {})
    version = found.get(FORMAT)
    if version != str(FORMAT_VERSION):
        raise ParseError(
            f"message format {version!r} is not {FORMAT_VERSION} (header {FORMAT})",
            location=location,
        )
    for name in (AGENT, HOST, SEQUENCE):
        if not found.get(name):
            raise ParseError(f"header {name} is missing", location=location)
    sequence = _number(found, SEQUENCE, location=location)
    after = _number(found, AFTER, location=location) if found.get(AFTER) else None
    if after is not None and not 0 <= after < sequence:
        raise ParseError(
            f"header {AFTER} {after} is not below the batch's sequence {sequence}",
            location=location,
        )
    encoding = found.get(ENCODING, "")
    if encoding == "gzip":
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError) as exc:
            raise ParseError(f"body is not gzip: {exc}", location=location) from None
    elif encoding:
        raise ParseError(f"unknown {ENCODING} {encoding!r}", location=location)
    return BatchMessage(
        agent_id=found[AGENT], host_id=found[HOST], sequence=sequence, body=payload, after=after
    )
