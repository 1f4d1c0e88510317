"""Field mapping: which events a Sigma log source means, and where each Sigma field lives.

Sigma rules name fields the way Sysmon for Linux and auditd do (``Image``, ``CommandLine``,
``TargetFilename``, ``a0``, ``SYSCALL`` ...). This module maps a rule's ``logsource`` onto the
canonical event actions it covers, and each field onto a getter over :class:`Event`, so a
rule is checked against exactly the events and values it was written for.

Every field value is text (numbers and booleans in their usual spelling: ``"4444"``,
``"true"``). An unknown value (the model's ``""``, a missing struct) is absent, so Sigma
``null`` matches it and ``exists`` does not.

One field is ProvArmor's own, as Sysmon has no equivalent: ``FileMode``, the permission
bits a chmod set, as four octal digits (``4755`` for a setuid program), so a rule can ask
for the setuid bit with ``FileMode|re: '^[4-7]'``.

Log sources:

* ``product: linux`` with ``category``: ``process_creation`` (exec), ``file_event`` and
  ``file_create`` (create, write, rename target), ``file_delete``, ``file_rename``,
  ``file_change`` (write, truncate, chmod, chown), ``network_connection`` (connect, accept
  with a remote IP address: unix-socket connects are not network connections);
* ``product: linux`` with the Sysmon categories that have a Linux counterpart here:
  ``file_access`` (open and read: ``TargetFilename`` is the file opened for reading, the
  way Windows object-access rules use it), ``process_access`` (ptrace: ``SourceImage`` is the
  tracer, ``TargetImage``/``TargetProcessId``/``TargetProcessGUID`` the traced process),
  ``driver_load`` (kernel module loads, failed attempts included: ``ImageLoaded`` is the
  module file, or ``init_module:LENGTH`` for a module loaded from memory) and ``image_load``
  (executable file mappings: ``ImageLoaded`` is the mapped file, e.g. a shared library);
* ``service: auditd``: the raw audit records of events that carry ``Event.auditd``;
* ``product: linux`` with a host-log ``service`` (:data:`LOG_SERVICES`: ``sshd``, ``sudo``,
  ``cron``, ``auth``, ``syslog`` ...): the host-log events (journald, syslog) whose
  program (``process.name``) is that service's, or every host-log event for ``auth`` and
  ``syslog`` (the facility is not kept). Their keyword text is the logged message; their
  fields are ECS names (``event.action``, ``event.outcome``, ``event.reason``, ``user.name``,
  ``user.target.name``, ``user.target.id``, ``source.ip``, ``authentication.method``,
  ``process.name``, ``message``) besides the process ones; ``User`` (sudo's ``USER=``) is the
  account acted as, or the one that logged in, when the process has no user of its own;
* ``product: linux`` alone: every event (keyword rules written for any Linux log).

Anything else is unsupported with a reason: ProvArmor has no such events yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from provarmor.model.actions import LOG_ACTIONS, Action
from provarmor.model.event import Event, ProcessRef

Getter = Callable[[Event], str | None]


class RecordKind(StrEnum):
    """What a compiled rule is evaluated on."""

    EVENT = "event"
    """The canonical event, through the field getters below."""
    AUDITD = "auditd"
    """Each raw audit record of the event (``type``, ``a0`` ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSource:
    """Where a rule applies: a record kind and the actions (None: every action)."""

    name: str
    kind: RecordKind
    actions: frozenset[Action] | None
    fields: frozenset[str]
    """Sigma field names (lower case) this log source knows."""
    requires: frozenset[str] = frozenset()
    """Fields an event must have to belong here (a network connection has a remote IP)."""
    programs: frozenset[str] | None = None
    """Host-log services: the (lower-case) programs whose lines belong here (None: any)."""


class UnsupportedLogSource(Exception):
    """The rule's log source means events ProvArmor does not produce."""


def _image(event: Event) -> str | None:
    return event.process.executable or None


def _command_line(event: Event) -> str | None:
    process = event.process
    return process.command_line or " ".join(process.args) or None


def _parent_image(event: Event) -> str | None:
    parent = event.process.parent
    return None if parent is None else (parent.executable or None)


def _parent_command_line(event: Event) -> str | None:
    parent = event.process.parent
    return None if parent is None else (parent.command_line or None)


def _current_directory(event: Event) -> str | None:
    return event.process.working_directory or None


def _user(event: Event) -> str | None:
    user = event.process.user
    if user is None:
        account = event.user
        if account is None:
            return None
        return (account.target.name if account.target is not None else account.name) or None
    if user.name:
        return user.name
    return "root" if user.id == "0" else (user.id or None)


def _logon_id(event: Event) -> str | None:
    return None if event.auditd is None else event.auditd.get("auid") or None


def _process_id(event: Event) -> str | None:
    return str(event.process.pid) if event.process.pid else None


def _process_guid(event: Event) -> str | None:
    return event.process.entity_id or None


def _parent_process_id(event: Event) -> str | None:
    parent = event.process.parent
    return str(parent.pid) if parent is not None and parent.pid else None


def _parent_process_guid(event: Event) -> str | None:
    parent = event.process.parent
    return None if parent is None else (parent.entity_id or None)


def _target_filename(event: Event) -> str | None:
    return None if event.file is None else (event.file.path or None)


def _source_filename(event: Event) -> str | None:
    return None if event.file is None else (event.file.original_path or None)


def _file_mode(event: Event) -> str | None:
    file = event.file
    return None if file is None or file.mode is None else f"{file.mode & 0o7777:04o}"


def _target_process(event: Event) -> ProcessRef | None:
    return None if event.target is None else event.target.process


def _target_image(event: Event) -> str | None:
    process = _target_process(event)
    return None if process is None else (process.executable or None)


def _target_process_id(event: Event) -> str | None:
    process = _target_process(event)
    return str(process.pid) if process is not None and process.pid else None


def _target_process_guid(event: Event) -> str | None:
    process = _target_process(event)
    return None if process is None else (process.entity_id or None)


def _destination_ip(event: Event) -> str | None:
    return None if event.destination is None else (event.destination.ip or None)


def _destination_port(event: Event) -> str | None:
    endpoint = event.destination
    return str(endpoint.port) if endpoint is not None and endpoint.port else None


def _destination_hostname(event: Event) -> str | None:
    return None if event.destination is None else (event.destination.domain or None)


def _source_ip(event: Event) -> str | None:
    return None if event.source is None else (event.source.ip or None)


def _source_port(event: Event) -> str | None:
    endpoint = event.source
    return str(endpoint.port) if endpoint is not None and endpoint.port else None


_EGRESS_ACTIONS = frozenset({Action.CONNECT, Action.SEND})
_INGRESS_ACTIONS = frozenset({Action.ACCEPT, Action.RECV})


def _initiated(event: Event) -> str | None:
    """``true`` when this process initiated (egress), from the direction or the action."""
    direction = event.network.direction if event.network is not None else ""
    action = event.event.action
    if direction == "egress" or (not direction and action in _EGRESS_ACTIONS):
        return "true"
    if direction == "ingress" or (not direction and action in _INGRESS_ACTIONS):
        return "false"
    return None


def _protocol(event: Event) -> str | None:
    return None if event.network is None else (event.network.transport or None)


def _program(event: Event) -> str | None:
    return event.process.name.lower() or None


def _message(event: Event) -> str | None:
    return event.message or None


def _action(event: Event) -> str | None:
    return event.event.action.value


def _outcome(event: Event) -> str | None:
    return event.event.outcome or None


def _reason(event: Event) -> str | None:
    return event.event.reason or None


def _user_name(event: Event) -> str | None:
    return None if event.user is None else (event.user.name or None)


def _target_user_name(event: Event) -> str | None:
    target = None if event.user is None else event.user.target
    return None if target is None else (target.name or None)


def _target_user_id(event: Event) -> str | None:
    target = None if event.user is None else event.user.target
    return None if target is None else (target.id or None)


def _authentication_method(event: Event) -> str | None:
    return None if event.authentication is None else (event.authentication.method or None)


PROCESS_FIELDS: dict[str, Getter] = {
    "image": _image,
    "commandline": _command_line,
    "parentimage": _parent_image,
    "parentcommandline": _parent_command_line,
    "currentdirectory": _current_directory,
    "user": _user,
    "logonid": _logon_id,
    "processid": _process_id,
    "processguid": _process_guid,
    "parentprocessid": _parent_process_id,
    "parentprocessguid": _parent_process_guid,
}
FILE_FIELDS: dict[str, Getter] = {
    "targetfilename": _target_filename,
    "sourcefilename": _source_filename,
    "filemode": _file_mode,
}
LOADED_FIELDS: dict[str, Getter] = {"imageloaded": _target_filename}
"""``driver_load`` and ``image_load``: the module or library file."""
ACCESS_FIELDS: dict[str, Getter] = {
    "sourceimage": _image,
    "sourceprocessid": _process_id,
    "sourceprocessguid": _process_guid,
    "targetimage": _target_image,
    "targetprocessid": _target_process_id,
    "targetprocessguid": _target_process_guid,
}
"""``process_access``: the tracer (source) and the traced process (target)."""
NETWORK_FIELDS: dict[str, Getter] = {
    "destinationip": _destination_ip,
    "destinationport": _destination_port,
    "destinationhostname": _destination_hostname,
    "sourceip": _source_ip,
    "sourceport": _source_port,
    "initiated": _initiated,
    "protocol": _protocol,
}
LOG_FIELDS: dict[str, Getter] = {
    "process.name": _program,
    "message": _message,
    "event.action": _action,
    "event.outcome": _outcome,
    "event.reason": _reason,
    "user.name": _user_name,
    "user.target.name": _target_user_name,
    "user.target.id": _target_user_id,
    "source.ip": _source_ip,
    "authentication.method": _authentication_method,
}
"""Host-log events (``service: sshd`` ...), by ECS name."""
PROGRAM_FIELD = "process.name"
EVENT_FIELDS: dict[str, Getter] = {
    **PROCESS_FIELDS,
    **LOG_FIELDS,
    **FILE_FIELDS,
    **NETWORK_FIELDS,
    **LOADED_FIELDS,
    **ACCESS_FIELDS,
}
"""Every field an event-kind rule may name, by lower-case Sigma name."""

# fmt: off
AUDITD_FIELDS = frozenset({
    "type", "syscall", "arch", "success", "exit", "items", "ppid", "pid", "auid", "uid", "gid",
    "euid", "suid", "fsuid", "egid", "sgid", "fsgid", "tty", "ses", "comm", "exe", "subj", "key",
    "name", "inode", "dev", "mode", "ouid", "ogid", "rdev", "nametype", "cwd", "argc",
    "proctitle", "cap_fp", "cap_fi", "cap_fe", "cap_fver", "cap_pp", "cap_pi", "cap_pe", "unit",
    "msg", "res", "op", "acct", "hostname", "addr", "terminal", "saddr", "id", "new_gid",
    "old_auid", "old_ses", "family", "laddr", "lport", "obj", "objtype", "sig", "seresult",
    "seperms",
})
# fmt: on
"""Raw audit record fields (``SYSCALL`` is spelled as ``syscall``); plus ``a0``, ``a1`` ..."""
_AUDIT_ARGUMENT = re.compile(r"a[0-9]+(\[[0-9]+\])?|a[0-9]+_len")


def auditd_field_known(name: str) -> bool:
    return name in AUDITD_FIELDS or _AUDIT_ARGUMENT.fullmatch(name) is not None


_FILE_EVENT = frozenset({Action.CREATE, Action.WRITE, Action.RENAME})
_CATEGORIES: dict[str, tuple[frozenset[Action], frozenset[str]]] = {
    "process_creation": (frozenset({Action.EXEC}), frozenset(PROCESS_FIELDS)),
    "file_event": (_FILE_EVENT, frozenset(PROCESS_FIELDS) | frozenset(FILE_FIELDS)),
    "file_create": (_FILE_EVENT, frozenset(PROCESS_FIELDS) | frozenset(FILE_FIELDS)),
    "file_delete": (frozenset({Action.DELETE}), frozenset(PROCESS_FIELDS) | frozenset(FILE_FIELDS)),
    "file_rename": (frozenset({Action.RENAME}), frozenset(PROCESS_FIELDS) | frozenset(FILE_FIELDS)),
    "file_change": (
        frozenset({Action.WRITE, Action.TRUNCATE, Action.CHMOD, Action.CHOWN}),
        frozenset(PROCESS_FIELDS) | frozenset(FILE_FIELDS),
    ),
    "network_connection": (
        frozenset({Action.CONNECT, Action.ACCEPT}),
        frozenset(PROCESS_FIELDS) | frozenset(NETWORK_FIELDS),
    ),
    "file_access": (
        frozenset({Action.OPEN, Action.READ}),
        frozenset(PROCESS_FIELDS) | frozenset(FILE_FIELDS),
    ),
    "process_access": (
        frozenset({Action.PTRACE}),
        frozenset(PROCESS_FIELDS) | frozenset(ACCESS_FIELDS),
    ),
    "driver_load": (
        frozenset({Action.MODULE_LOAD}),
        frozenset(PROCESS_FIELDS) | frozenset(FILE_FIELDS) | frozenset(LOADED_FIELDS),
    ),
    "image_load": (
        frozenset({Action.MMAP_EXEC}),
        frozenset(PROCESS_FIELDS) | frozenset(FILE_FIELDS) | frozenset(LOADED_FIELDS),
    ),
}


_REQUIRED = {"network_connection": frozenset({"destinationip"})}
"""Sysmon's network connections are IP connections: unix-socket connects are not among them."""


LOG_SERVICES: dict[str, frozenset[str] | None] = {
    "auth": None,
    "syslog": None,
    "sshd": frozenset({"sshd"}),
    "sudo": frozenset({"sudo"}),
    "cron": frozenset({"cron", "crond", "crontab", "anacron"}),
    "guacamole": frozenset({"guacd", "guacamole"}),
    "clamav": frozenset({"clamd", "freshclam", "clamav-milter", "clamscan", "clamonacc"}),
    "vsftpd": frozenset({"vsftpd"}),
}
"""Host-log Sigma services and the programs whose lines they mean (None: every line)."""
_LOG_SOURCE_FIELDS = frozenset(PROCESS_FIELDS) | frozenset(LOG_FIELDS)


def map_logsource(*, product: str | None, category: str | None, service: str | None) -> LogSource:
    """The events a rule's ``logsource`` covers; raises :class:`UnsupportedLogSource`."""
    if product not in (None, "linux"):
        raise UnsupportedLogSource(f"product '{product}': only linux events are produced")
    if service is not None:
        if service == "auditd" and category is None:
            return LogSource(
                name="auditd", kind=RecordKind.AUDITD, actions=None, fields=AUDITD_FIELDS
            )
        if service in LOG_SERVICES and category is None:
            return LogSource(
                name=service,
                kind=RecordKind.EVENT,
                actions=LOG_ACTIONS,
                fields=_LOG_SOURCE_FIELDS,
                programs=LOG_SERVICES[service],
            )
        raise UnsupportedLogSource(
            f"service '{service}': ProvArmor has no {service} log events (auditd records and "
            f"the host logs of {', '.join(sorted(LOG_SERVICES))} only)"
        )
    if category is None:
        if product is None:
            raise UnsupportedLogSource("logsource names no product, category or service")
        return LogSource(
            name="linux", kind=RecordKind.EVENT, actions=None, fields=frozenset(EVENT_FIELDS)
        )
    if category not in _CATEGORIES:
        raise UnsupportedLogSource(f"category '{category}': ProvArmor has no such events yet")
    actions, fields = _CATEGORIES[category]
    requires = _REQUIRED.get(category, frozenset())
    return LogSource(
        name=category, kind=RecordKind.EVENT, actions=actions, fields=fields, requires=requires
    )


_KEYWORD_PATH_ACTIONS = frozenset(
    {
        Action.CREATE,
        Action.WRITE,
        Action.DELETE,
        Action.RENAME,
        Action.LINK,
        Action.CHMOD,
        Action.CHOWN,
        Action.TRUNCATE,
        Action.MODULE_LOAD,
        Action.MEMFD_CREATE,
    }
)


KEYWORD_ACTIONS = _KEYWORD_PATH_ACTIONS | {Action.EXEC, Action.CONNECT, Action.ACCEPT} | LOG_ACTIONS
"""The actions whose events can have keyword text; for the others it is always empty."""


def keyword_text(event: Event) -> tuple[str, ...]:
    """The text a field-less (keyword) search looks in: what this event newly says.

    exec: the command line and program; changes to files: the paths; connections: the
    remote domain or address; host-log events: the logged message. Reads, opens and maps
    say nothing new and give no text, so keyword rules do not fire again on every file a
    matching process touches.
    """
    action = event.event.action
    if action in LOG_ACTIONS:
        return (event.message,) if event.message else ()
    if action is Action.EXEC:
        process = event.process
        line = process.command_line or " ".join(process.args)
        return tuple(text for text in (line, process.executable) if text)
    if action in _KEYWORD_PATH_ACTIONS and event.file is not None:
        file = event.file
        return tuple(text for text in (file.path, file.original_path) if text)
    if action in (Action.CONNECT, Action.ACCEPT) and event.destination is not None:
        endpoint = event.destination
        return tuple(text for text in (endpoint.domain, endpoint.address) if text)
    return ()
