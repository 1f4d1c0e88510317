"""Applying CDM definition records (Host, Principal, Subject, objects) to the import state.

These records are not events; they name what later events refer to by UUID. Each function
updates :class:`CdmState` and returns nothing. MemoryObjects are not kept: the canonical
model has no use for an address range, and THEIA emits hundreds of thousands of them.
"""

from __future__ import annotations

import ipaddress

from provarmor.model.event import Endpoint, User
from provarmor.sources.cdm.entities import CdmState, ObjectInfo, SubjectState
from provarmor.sources.cdm.records import (
    FileObjectRecord,
    HostRecord,
    NetFlowRecord,
    PipeRecord,
    PrincipalRecord,
    Record,
    SrcSinkRecord,
    SubjectRecord,
    avro,
    avro_uuid,
    bounded,
    canonical_uuid,
    nanos,
)

MAX_PID = 2**31 - 1

_FILE_TYPES = {
    "FILE_OBJECT_DIR": "dir",
    "FILE_OBJECT_LINK": "symlink",
    "FILE_OBJECT_UNIX_SOCKET": "socket",
    "FILE_OBJECT_NAMED_PIPE": "pipe",
    "FILE_OBJECT_CHAR": "char",
    "FILE_OBJECT_BLOCK": "file",
    "FILE_OBJECT_FILE": "file",
}
"""THEIA marks regular files on block devices as FILE_OBJECT_BLOCK; both are ``file``."""

_UNKNOWN_ADDRESSES = {"", "NA", "null", "None"}
_PROTOCOLS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}


def apply_definition(record: Record, state: CdmState) -> None:
    """Remember what ``record`` defines (a non-event record)."""
    match record:
        case HostRecord():
            if len(state.host_names) < state.limits.principals:
                state.host_names[canonical_uuid(record.uuid)] = record.host_name
        case PrincipalRecord():
            name = avro(record.username)
            state.principals.put(canonical_uuid(record.uuid), User(id=record.user_id, name=name))
        case SubjectRecord():
            _apply_subject(record, state)
        case FileObjectRecord():
            _apply_file(record, state)
        case NetFlowRecord():
            _apply_netflow(record, state)
        case PipeRecord():
            state.objects.put(canonical_uuid(record.uuid), ObjectInfo(kind="pipe"))
        case SrcSinkRecord():
            state.objects.put(canonical_uuid(record.uuid), ObjectInfo(kind="srcsink"))
        case _:
            pass


def _apply_subject(record: SubjectRecord, state: CdmState) -> None:
    uuid = canonical_uuid(record.uuid)
    known = state.subjects.get(uuid)
    subject = known or SubjectState(uuid=uuid)
    subject.pid = bounded(record.cid, MAX_PID) or subject.pid
    subject.parent = avro_uuid(record.parent_subject) or subject.parent
    subject.start = nanos(record.start_timestamp_nanos) or subject.start
    command_line = avro(record.cmd_line)
    if command_line:
        subject.command_line = command_line
    properties = record.properties.map if record.properties and record.properties.map else {}
    path = properties.get("path", "")
    if path:
        subject.executable = path
        subject.name = path.rsplit("/", 1)[-1]
    principal = canonical_uuid(avro(record.local_principal))
    subject.user = state.principals.get(principal) or subject.user
    if subject.parent == uuid:
        subject.parent = ""
    state.subjects.put(uuid, subject)


def _apply_file(record: FileObjectRecord, state: CdmState) -> None:
    base = record.base_object
    properties = base.properties.map if base and base.properties and base.properties.map else {}
    path = properties.get("path") or properties.get("filename") or ""
    info = ObjectInfo(kind="file", path=path, file_type=_FILE_TYPES.get(record.type, ""))
    state.objects.put(canonical_uuid(record.uuid), info)


def _apply_netflow(record: NetFlowRecord, state: CdmState) -> None:
    local = endpoint(record.local_address, record.local_port)
    remote = endpoint(record.remote_address, record.remote_port)
    transport = ""
    if record.ip_protocol:
        for number in record.ip_protocol.values():
            transport = _PROTOCOLS.get(number, "")
    if "NETLINK" in (record.local_address, record.remote_address):
        transport = "netlink"
    info = ObjectInfo(kind="netflow", local=local, remote=remote, transport=transport)
    state.objects.put(canonical_uuid(record.uuid), info)


def endpoint(address: str | None, port: int | None) -> Endpoint | None:
    """An endpoint from CDM address/port fields; ``None`` when neither is known.

    Non-IP addresses (``localhost``, ``NETLINK``, ``LOCAL``) go to ``address``; negative
    ports (CADETS writes -1 for "none") become 0.
    """
    text = (address or "").strip()
    if text in _UNKNOWN_ADDRESSES:
        text = ""
    number = bounded(port, 65535)
    if not text and not number:
        return None
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return Endpoint(address=text, port=number)
    return Endpoint(ip=text, port=number)
