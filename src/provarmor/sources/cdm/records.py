"""Decoding of DARPA Transparent Computing CDM18 JSON records into typed structs.

One line holds one record: ``{"datum": {"<Type>": {...}}, "CDMVersion": "18", ...}`` where
``<Type>`` is either the bare record name (CADETS: ``"Event"``) or the Avro full name
(THEIA: ``"com.bbn.tc.schema.avro.cdm18.Event"``). Avro unions appear as one-key objects
(``{"string": "aue_read"}``, ``{"long": 1}``, ``{"UUID": "..."}``).

Everything here is pure: bytes in, struct out, :class:`ParseError` for a bad record. The
normalisers at the bottom turn the two UUID encodings and the two clock units found in the
public samples into one form (see :func:`canonical_uuid` and :func:`nanos`).
"""

from __future__ import annotations

import re

import msgspec
from msgspec import Struct

from provarmor.model.errors import ParseError
from provarmor.model.time_units import NS_PER_US

AvroValue = dict[str, str] | str | None
"""An Avro ``union {null, string|UUID}`` as serialised to JSON: ``{"type": value}``."""


class Properties(Struct, frozen=True, rename="camel"):
    map: dict[str, str] | None = None


class BaseObject(Struct, frozen=True, rename="camel"):
    host_id: str | None = None
    properties: Properties | None = None


class EventRecord(Struct, frozen=True, rename="camel"):
    uuid: str
    type: str
    timestamp_nanos: int = 0
    subject: dict[str, str] | None = None
    predicate_object: dict[str, str] | None = None
    predicate_object_path: dict[str, str] | None = None
    predicate_object2: dict[str, str] | None = None
    predicate_object2_path: dict[str, str] | None = None
    name: dict[str, str] | None = None
    size: dict[str, int] | None = None
    sequence: dict[str, int] | None = None
    thread_id: dict[str, int] | None = None
    host_id: str | None = None
    properties: Properties | None = None


class SubjectRecord(Struct, frozen=True, rename="camel"):
    uuid: str
    type: str = "SUBJECT_PROCESS"
    cid: int = 0
    parent_subject: dict[str, str] | None = None
    host_id: str | None = None
    local_principal: AvroValue = None
    start_timestamp_nanos: int | None = None
    cmd_line: AvroValue = None
    properties: Properties | None = None


class PrincipalRecord(Struct, frozen=True, rename="camel"):
    uuid: str
    user_id: str = ""
    username: AvroValue = None


class HostRecord(Struct, frozen=True, rename="camel"):
    uuid: str
    host_name: str = ""


class FileObjectRecord(Struct, frozen=True, rename="camel"):
    uuid: str
    type: str = ""
    base_object: BaseObject | None = None


class NetFlowRecord(Struct, frozen=True, rename="camel"):
    uuid: str
    local_address: str | None = None
    local_port: int | None = None
    remote_address: str | None = None
    remote_port: int | None = None
    ip_protocol: dict[str, int] | None = None


class PipeRecord(Struct, frozen=True, rename="camel"):
    uuid: str


class SrcSinkRecord(Struct, frozen=True, rename="camel"):
    uuid: str
    type: str = ""


class Envelope(Struct, frozen=True, rename="camel"):
    datum: dict[str, msgspec.Raw]


Record = (
    EventRecord
    | SubjectRecord
    | PrincipalRecord
    | HostRecord
    | FileObjectRecord
    | NetFlowRecord
    | PipeRecord
    | SrcSinkRecord
)

_DECODERS: dict[str, msgspec.json.Decoder[Record]] = {
    "Event": msgspec.json.Decoder(EventRecord),
    "Subject": msgspec.json.Decoder(SubjectRecord),
    "Principal": msgspec.json.Decoder(PrincipalRecord),
    "Host": msgspec.json.Decoder(HostRecord),
    "FileObject": msgspec.json.Decoder(FileObjectRecord),
    "NetFlowObject": msgspec.json.Decoder(NetFlowRecord),
    "UnnamedPipeObject": msgspec.json.Decoder(PipeRecord),
    "SrcSinkObject": msgspec.json.Decoder(SrcSinkRecord),
}
_envelope = msgspec.json.Decoder(Envelope)


def parse_cdm_line(line: bytes, *, location: str) -> tuple[str, Record | None]:
    """Decode one CDM line into ``(record type name, struct)``.

    The struct is ``None`` for record types this importer reads but does not decode
    (``MemoryObject``, ``RegistryKeyObject``, ``TimeMarker`` ...): the caller counts them.
    """
    try:
        envelope = _envelope.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"not a CDM record: {exc}", location=location) from None
    if len(envelope.datum) != 1:
        raise ParseError("CDM datum must hold exactly one record", location=location)
    ((full_name, raw),) = envelope.datum.items()
    kind = full_name.rsplit(".", 1)[-1]
    decoder = _DECODERS.get(kind)
    if decoder is None:
        return kind, None
    try:
        return kind, decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"bad CDM {kind} record: {exc}", location=location) from None


def avro(value: AvroValue) -> str:
    """The value of an Avro union (``{"string": "x"}`` -> ``"x"``), ``""`` for null."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    for item in value.values():
        return item
    return ""


def avro_uuid(value: dict[str, str] | None) -> str:
    """A UUID reference (``{"UUID": ...}`` or ``{"com.bbn...UUID": ...}``), canonical form."""
    return canonical_uuid(avro(value)) if value else ""


_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_DASHED = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def canonical_uuid(text: str) -> str:
    """The dashed lower-case form of a CDM UUID.

    CADETS writes UUIDs as text; THEIA writes the 16 raw bytes as 16 characters
    (code points 0-255). Both become ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``. Anything else
    is returned unchanged so no id is ever lost.
    """
    if _DASHED.match(text):
        return text.lower()
    if len(text) == 16 and all(ord(char) < 256 for char in text):
        text = text.encode("latin-1").hex()
    if _HEX32.match(text):
        text = text.lower()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


INT64_MAX = 2**63 - 1
MICROS_FLOOR = 10**14
MICROS_CEILING = INT64_MAX // NS_PER_US


def nanos(value: int | None) -> int:
    """``timestampNanos`` in nanoseconds.

    THEIA's CDM18 sample fills the nanosecond fields with MICROseconds (1515799688913542 is
    January 2018 in microseconds, January 1970 in nanoseconds). A value from 1e14 up to
    (2**63-1)/1000 is a date between 1973 and 2262 when read as microseconds and before 1973
    when read as nanoseconds, so such values are scaled by 1000; anything else is kept,
    except values outside 0..2**63-1, which no clock writes and which become 0 (unknown).
    """
    if value is None or value < 0 or value > INT64_MAX:
        return 0
    if MICROS_FLOOR <= value < MICROS_CEILING:
        return value * NS_PER_US
    return value


def bounded(value: int | None, upper: int) -> int:
    """``value`` when it lies in 0..upper, else 0 (pids, ports and sizes from hostile input)."""
    if value is None or value < 0 or value > upper:
        return 0
    return value
