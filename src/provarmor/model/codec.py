"""Encoding of canonical events: NDJSON (one ECS-shaped JSON object per line) and a compact
binary stream (MessagePack frames behind a versioned header).

Decoders are pure: bytes in, events out, :class:`ParseError` (with the line) for a bad record.
Batch decoding tries the fast whole-batch path first and falls back to line by line only
when a batch holds a bad record, so good records around a bad one are kept.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import msgspec

from provarmor.model.errors import ParseError
from provarmor.model.event import Event

BINARY_MAGIC = b"PAEV"
BINARY_FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sH")
_FRAME = struct.Struct("<I")
MAX_RECORD_BYTES = 4 * 1024 * 1024
"""Records larger than this are rejected rather than decoded (hostile input)."""

_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder(Event)
_json_lines_decoder = msgspec.json.Decoder(list[Event])
_msgpack_encoder = msgspec.msgpack.Encoder()
_msgpack_decoder = msgspec.msgpack.Decoder(Event)


def encode_json(event: Event) -> bytes:
    """One event as a JSON object (no newline)."""
    return _json_encoder.encode(event)


def encode_ndjson(events: Iterable[Event]) -> bytes:
    """Events as NDJSON, each line ending in a newline."""
    buffer = bytearray()
    for event in events:
        _json_encoder.encode_into(event, buffer, len(buffer))
        buffer += b"\n"
    return bytes(buffer)


def parse_json_event(data: bytes | str, *, location: str = "") -> Event:
    """Decode one event, raising :class:`ParseError` naming ``location`` on failure."""
    if len(data) > MAX_RECORD_BYTES:
        raise ParseError(
            f"record of {len(data)} bytes exceeds {MAX_RECORD_BYTES}", location=location
        )
    try:
        return _json_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"not a canonical event: {exc}", location=location) from None


def parse_ndjson_batch(
    lines: list[bytes], *, source: str, first_line: int
) -> tuple[list[Event], list[ParseError]]:
    """Decode a batch of NDJSON lines; returns the good events and one error per bad line.

    Blank lines are skipped. ``first_line`` is the 1-based line number of ``lines[0]``.
    """
    body = [line for line in lines if line.strip()]
    if not body:
        return [], []
    if all(len(line) <= MAX_RECORD_BYTES for line in body):
        try:
            return _json_lines_decoder.decode(b"[" + b",".join(body) + b"]"), []
        except (msgspec.DecodeError, UnicodeDecodeError):
            pass
    events: list[Event] = []
    errors: list[ParseError] = []
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            events.append(parse_json_event(line, location=f"{source}:{first_line + offset}"))
        except ParseError as exc:
            errors.append(exc)
    return events, errors


def encode_binary_header() -> bytes:
    return _HEADER.pack(BINARY_MAGIC, BINARY_FORMAT_VERSION)


def encode_binary_frame(event: Event) -> bytes:
    """One length-prefixed MessagePack frame."""
    payload = _msgpack_encoder.encode(event)
    return _FRAME.pack(len(payload)) + payload


def encode_binary(events: Iterable[Event]) -> bytes:
    """A whole binary stream: header, then one frame per event."""
    parts = [encode_binary_header()]
    parts.extend(encode_binary_frame(event) for event in events)
    return b"".join(parts)


def parse_binary(data: bytes, *, source: str = "<binary>") -> Iterator[Event]:
    """Decode a binary stream. A bad frame raises :class:`ParseError` with its byte offset;
    a truncated tail raises after every complete frame before it has been yielded."""
    if len(data) < _HEADER.size:
        raise ParseError("too short for a ProvArmor binary header", location=f"{source}@0")
    magic, version = _HEADER.unpack_from(data, 0)
    if magic != BINARY_MAGIC:
        raise ParseError("not a ProvArmor binary event stream", location=f"{source}@0")
    if version != BINARY_FORMAT_VERSION:
        raise ParseError(
            f"binary format version {version} is not supported (this build reads "
            f"{BINARY_FORMAT_VERSION})",
            location=f"{source}@0",
        )
    offset = _HEADER.size
    end = len(data)
    while offset < end:
        if end - offset < _FRAME.size:
            raise ParseError("truncated frame header", location=f"{source}@{offset}")
        (size,) = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if size > MAX_RECORD_BYTES or start + size > end:
            raise ParseError(
                f"truncated or oversized frame ({size} bytes)", location=f"{source}@{offset}"
            )
        try:
            yield _msgpack_decoder.decode(data[start : start + size])
        except msgspec.DecodeError as exc:
            raise ParseError(f"bad frame: {exc}", location=f"{source}@{offset}") from None
        offset = start + size


def event_to_builtins(event: Event) -> dict[str, object]:
    """The event as plain JSON-compatible dicts (for exporters and rule field lookup)."""
    result = msgspec.to_builtins(event)
    assert isinstance(result, dict)
    return result
