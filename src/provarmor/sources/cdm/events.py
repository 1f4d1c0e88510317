"""Turning one CDM18 Event record into a canonical :class:`Event`, or a reason it was skipped.

Each handler follows the ``Action`` docstring (model/actions.py):

* ``EVENT_FORK``/``EVENT_CLONE``: ``process`` is the NEW child subject, ``process.parent`` the
  forking subject; ``EVENT_EXECUTE`` keeps the subject's entity id and updates its program.
* Files: ``file.path`` from ``predicateObjectPath`` / ``predicateObject2Path``, else the path
  the FileObject record (``filename``/``path``) or an earlier event gave the object.
  ``EVENT_OPEN`` is ``write`` when its flags open for writing.
* Network (on a NetFlowObject): ``destination`` is the remote peer, ``source`` the local end.
  ``EVENT_READ``/``EVENT_WRITE`` on a NetFlowObject are ``recv``/``send``, as are THEIA's
  engagement-3 ``EVENT_READ_SOCKET_PARAMS``/``EVENT_WRITE_SOCKET_PARAMS``.
* ``EVENT_MMAP``/``EVENT_MPROTECT`` become ``mmap_exec`` only when the protection flags say
  ``PROT_EXEC`` and a file is mapped; ``EVENT_LOADLIBRARY`` is ``mmap_exec`` of the library.

Handlers return a string (the ``report.skipped`` reason) instead of an event when the record
is deliberately not turned into one.

The handlers stay in one module (a little over 400 lines) because they share the draft type
and are all listed in the one dispatch table at the bottom, which reads as the mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from provarmor.model.actions import Action
from provarmor.model.event import (
    Event,
    EventInfo,
    File,
    Host,
    LogRef,
    Network,
    Process,
    ProcessRef,
    Target,
    User,
)
from provarmor.sources.cdm.definitions import MAX_PID, endpoint
from provarmor.sources.cdm.entities import CdmState, ObjectInfo, SubjectState
from provarmor.sources.cdm.records import (
    INT64_MAX,
    EventRecord,
    avro,
    avro_uuid,
    bounded,
    nanos,
)


@dataclass(frozen=True, slots=True)
class Draft:
    """What every event built from one record shares."""

    record: EventRecord
    subject: str
    properties: dict[str, str]
    host: Host
    log: LogRef

    def event(self, action: Action, process: Process, **parts: object) -> Event:
        info = EventInfo(
            action=action,
            id=self.log.record,
            sequence=_first_int(self.record.sequence),
            outcome=_outcome(self.properties),
            dataset="cdm",
        )
        return Event(
            timestamp=nanos(self.record.timestamp_nanos),
            event=info,
            host=self.host,
            process=process,
            log=self.log,
            **parts,  # type: ignore[arg-type]
        )


Handler = Callable[[Draft, CdmState], "Event | str"]

SKIP_REASONS = {
    "EVENT_CLOSE": "close",
    "EVENT_BOOT": "boot",
    "EVENT_FLOWS_TO": "flows_to",
}
"""Event types deliberately not imported, with their ``report.skipped`` reason. Any type
not here and without a handler is counted as ``unmapped:<TYPE>``."""


def build_event(record: EventRecord, *, state: CdmState, host: Host, log: LogRef) -> Event | str:
    """The canonical event for ``record``, or the reason it is skipped."""
    handler = _HANDLERS.get(record.type)
    if handler is None:
        return SKIP_REASONS.get(record.type, "unmapped:" + record.type[:48])
    subject = avro_uuid(record.subject)
    if not subject:
        return "no_subject"
    properties = record.properties.map if record.properties and record.properties.map else {}
    return handler(Draft(record, subject, properties, host, log), state)


def process_of(uuid: str, draft: Draft, state: CdmState, *, acting: bool = True) -> Process:
    """The process ``uuid`` as known now.

    When it is the acting subject (``acting``), CADETS' event property ``exec`` names the
    program it runs, and THEIA's ``threadId`` is its pid when the Subject record had
    ``cid`` 0 (THEIA reports the task pid as thread id).
    """
    subject = state.subjects.get(uuid)
    name = draft.properties.get("exec", "") if acting else ""
    if subject is None:
        return Process(entity_id=uuid, pid=0, name=name)
    if acting:
        subject.pid = subject.pid or bounded(_first_int(draft.record.thread_id), MAX_PID)
        subject.name = name or subject.name
    parent = None
    if subject.parent:
        parent = _reference(subject.parent, state)
    command_line = subject.command_line
    return Process(
        entity_id=uuid,
        pid=subject.pid,
        start=subject.start,
        executable=subject.executable,
        name=name or subject.name,
        args=tuple(command_line.split()),
        command_line=command_line,
        user=subject.user,
        parent=parent,
    )


def _reference(uuid: str, state: CdmState) -> ProcessRef:
    known = state.subjects.get(uuid)
    if known is None:
        return ProcessRef(entity_id=uuid)
    return ProcessRef(
        entity_id=uuid,
        pid=known.pid,
        executable=known.executable,
        command_line=known.command_line,
    )


def _on_execute(draft: Draft, state: CdmState) -> Event | str:
    """The subject after the exec: same entity, the program and command line it now runs.

    CADETS' ``exec`` property on this record still names the program before the exec.
    """
    subject = state.subjects.get(draft.subject) or SubjectState(uuid=draft.subject)
    state.subjects.put(draft.subject, subject)
    path = _object_path(draft.record.predicate_object, draft.record.predicate_object_path, state)
    command_line = draft.properties.get("cmdLine", "")
    process = process_of(draft.subject, draft, state)
    if path:
        subject.executable = path
        subject.name = path.rsplit("/", 1)[-1]
    subject.command_line = command_line or subject.command_line
    process = msgspec.structs.replace(
        process,
        executable=subject.executable,
        name=subject.name,
        command_line=subject.command_line,
        args=tuple(subject.command_line.split()),
    )
    return draft.event(Action.EXEC, process, file=File(path=path) if path else None)


def _on_fork(draft: Draft, state: CdmState) -> Event | str:
    child_uuid = avro_uuid(draft.record.predicate_object)
    if not child_uuid or child_uuid == draft.subject:
        return "fork_without_child"
    child = state.subjects.get(child_uuid) or SubjectState(uuid=child_uuid)
    parent = state.subjects.get(draft.subject)
    child.pid = child.pid or bounded(_int(draft.properties.get("arg_pid", "")), MAX_PID)
    child.parent = draft.subject
    child.start = child.start or nanos(draft.record.timestamp_nanos)
    if parent is not None:
        child.executable = child.executable or parent.executable
        child.name = child.name or parent.name or draft.properties.get("exec", "")
        child.command_line = child.command_line or parent.command_line
        child.user = child.user or parent.user
    state.subjects.put(child_uuid, child)
    process = process_of(child_uuid, draft, state, acting=False)
    return draft.event(Action.FORK, process)


def _on_exit(draft: Draft, state: CdmState) -> Event | str:
    return draft.event(Action.EXIT, process_of(draft.subject, draft, state))


_FILE_ACTIONS = {
    "EVENT_OPEN": Action.OPEN,
    "EVENT_READ": Action.READ,
    "EVENT_WRITE": Action.WRITE,
    "EVENT_CREATE_OBJECT": Action.CREATE,
    "EVENT_UNLINK": Action.DELETE,
    "EVENT_TRUNCATE": Action.TRUNCATE,
    "EVENT_MODIFY_FILE_ATTRIBUTES": Action.CHMOD,
}


def _on_file(draft: Draft, state: CdmState) -> Event | str:
    record = draft.record
    info = state.objects.get(avro_uuid(record.predicate_object))
    if info is not None and info.kind == "netflow" and record.type in _SOCKET_IO:
        return _on_network(draft, state)
    if info is not None and info.kind == "srcsink":
        return "srcsink_io"
    action = _FILE_ACTIONS[record.type]
    if info is not None and info.kind == "pipe":
        if action is Action.CREATE:
            return "create_pipe"
        pipe = File(path=f"pipe:[{avro_uuid(record.predicate_object)}]", type="pipe")
        return draft.event(action, process_of(draft.subject, draft, state), file=pipe)
    path = _object_path(record.predicate_object, record.predicate_object_path, state)
    path = path or _absolute(draft.properties.get("partial_path", ""))
    if not path:
        return "file_without_path"
    file_type = info.file_type if info is not None else ""
    if action is Action.CREATE and draft.properties.get("call", _name(record)) == "aue_mkdir":
        file_type = "dir"
    action = _refine_file_action(action, draft)
    file = File(path=path, type=file_type)
    return draft.event(action, process_of(draft.subject, draft, state), file=file)


def _refine_file_action(action: Action, draft: Draft) -> Action:
    if action is Action.OPEN and _opens_for_writing(draft.properties.get("flags", "")):
        return Action.WRITE
    chown = "chown" in _name(draft.record) or "uid" in draft.properties
    if action is Action.CHMOD and chown:
        return Action.CHOWN
    return action


def _opens_for_writing(flags: str) -> bool:
    """Linux and FreeBSD share O_WRONLY=1 and O_RDWR=2; THEIA may also write flag names."""
    if flags.isdigit():
        return int(flags) & 3 in (1, 2)
    return "O_WRONLY" in flags or "O_RDWR" in flags


def _on_rename(draft: Draft, state: CdmState) -> Event | str:
    record = draft.record
    old = _object_path(record.predicate_object, record.predicate_object_path, state)
    new = _object_path(record.predicate_object2, record.predicate_object2_path, state)
    if not (old and new):
        return "rename_without_paths"
    target = state.objects.get(avro_uuid(record.predicate_object2))
    if target is not None:
        target.path = new
    action = Action.LINK if record.type == "EVENT_LINK" else Action.RENAME
    file = File(path=new, original_path=old)
    return draft.event(action, process_of(draft.subject, draft, state), file=file)


_SOCKET_IO = {"EVENT_READ": Action.RECV, "EVENT_WRITE": Action.SEND}
_NETWORK_ACTIONS = {
    "EVENT_CONNECT": Action.CONNECT,
    "EVENT_ACCEPT": Action.ACCEPT,
    "EVENT_BIND": Action.BIND,
    "EVENT_SENDTO": Action.SEND,
    "EVENT_SENDMSG": Action.SEND,
    "EVENT_WRITE_SOCKET_PARAMS": Action.SEND,
    "EVENT_RECVFROM": Action.RECV,
    "EVENT_RECVMSG": Action.RECV,
    "EVENT_READ_SOCKET_PARAMS": Action.RECV,
    **_SOCKET_IO,
}
_EGRESS = {Action.CONNECT, Action.SEND}


def _on_network(draft: Draft, state: CdmState) -> Event | str:
    record = draft.record
    action = _NETWORK_ACTIONS[record.type]
    info = state.objects.get(avro_uuid(record.predicate_object)) or ObjectInfo(kind="netflow")
    local, remote = info.local, info.remote
    stated = endpoint(draft.properties.get("address"), _int(draft.properties.get("port", "")))
    if action is Action.BIND:
        local = local or stated
        remote = None
        if local is None:
            return "bind_without_address"
    else:
        remote = remote or stated
        if remote is None:
            return "network_without_peer"
    direction = "" if action is Action.BIND else ("egress" if action in _EGRESS else "ingress")
    size = _first_int(record.size)
    network = Network(transport=info.transport, direction=direction, bytes=max(size, 0))
    process = process_of(draft.subject, draft, state)
    return draft.event(action, process, source=local, destination=remote, network=network)


_PROTECTION_KEYS = ("arg_mem_flags", "prot", "protection")


def _on_memory(draft: Draft, state: CdmState) -> Event | str:
    record = draft.record
    prefix = "mprotect" if record.type == "EVENT_MPROTECT" else "mmap"
    if _name(record) == "munmap":
        return "munmap"
    flags = " ".join(draft.properties.get(key, "") for key in _PROTECTION_KEYS)
    if "PROT_" not in flags:
        return f"{prefix}_prot_unknown"
    if "PROT_EXEC" not in flags:
        return f"{prefix}_not_exec"
    return _mapped_file(draft, state, reason=f"{prefix}_without_file")


def _on_load_library(draft: Draft, state: CdmState) -> Event | str:
    return _mapped_file(draft, state, reason="loadlibrary_without_file")


def _mapped_file(draft: Draft, state: CdmState, *, reason: str) -> Event | str:
    record = draft.record
    path = _object_path(record.predicate_object2, record.predicate_object2_path, state)
    path = path or _object_path(record.predicate_object, record.predicate_object_path, state)
    path = path or _absolute(draft.properties.get("partial_path", ""))
    if not path:
        return reason
    process = process_of(draft.subject, draft, state)
    return draft.event(Action.MMAP_EXEC, process, file=File(path=path))


def _on_change_principal(draft: Draft, state: CdmState) -> Event | str:
    user = state.principals.get(avro_uuid(draft.record.predicate_object))
    uid = draft.properties.get("newuid") or draft.properties.get("uid") or ""
    if user is None and uid:
        user = User(id=uid)
    if user is None:
        return "change_principal_without_user"
    process = process_of(draft.subject, draft, state)
    return draft.event(Action.SETUID, process, target=Target(user=user))


def _on_signal(draft: Draft, state: CdmState) -> Event | str:
    victim = avro_uuid(draft.record.predicate_object)
    if not victim:
        return "signal_without_target"
    target = Target(process=_reference(victim, state))
    return draft.event(Action.KILL, process_of(draft.subject, draft, state), target=target)


_HANDLERS: dict[str, Handler] = {
    "EVENT_EXECUTE": _on_execute,
    "EVENT_FORK": _on_fork,
    "EVENT_CLONE": _on_fork,
    "EVENT_EXIT": _on_exit,
    **dict.fromkeys(_FILE_ACTIONS, _on_file),
    "EVENT_RENAME": _on_rename,
    "EVENT_LINK": _on_rename,
    **dict.fromkeys(set(_NETWORK_ACTIONS) - set(_SOCKET_IO), _on_network),
    "EVENT_MMAP": _on_memory,
    "EVENT_MPROTECT": _on_memory,
    "EVENT_LOADLIBRARY": _on_load_library,
    "EVENT_CHANGE_PRINCIPAL": _on_change_principal,
    "EVENT_SIGNAL": _on_signal,
}


def _object_path(
    reference: dict[str, str] | None, stated: dict[str, str] | None, state: CdmState
) -> str:
    """The path an event states for an object, else the one its object is known by.

    A path stated by the event is remembered on the object for later events (CADETS gives
    paths on opens but not on the mmaps, reads and writes that follow).
    """
    path = avro(stated) if stated else ""
    info = state.objects.get(avro_uuid(reference)) if reference else None
    if info is not None and info.kind == "file":
        if path:
            info.path = path
        return path or info.path
    return path


def _absolute(path: str) -> str:
    return path if path.startswith("/") else ""


def _name(record: EventRecord) -> str:
    return avro(record.name) if record.name else ""


def _outcome(properties: dict[str, str]) -> str:
    for key in ("return_value", "retval"):
        if _int(properties.get(key, "")) < 0:
            return "failure"
    return "success"


def _first_int(value: dict[str, int] | None) -> int:
    """An Avro ``{"long": n}``/``{"int": n}`` as a non-negative int64 (0 when absent or wild)."""
    if not value:
        return 0
    for number in value.values():
        return bounded(number, INT64_MAX)
    return 0


def _int(text: str | None) -> int:
    """A property (all CDM properties are strings) as an int in -2**31..2**31, else 0."""
    text = (text or "").strip()
    if not re.fullmatch(r"-?\d{1,10}", text):
        return 0
    return int(text)
