"""The canonical event: one immutable record per thing a process did.

Field names follow the Elastic Common Schema (``process.entity_id``, ``file.path``,
``destination.ip``, ``event.action`` ...). Two deliberate differences, both for speed:

* ``@timestamp`` is an integer count of nanoseconds since the Unix epoch (the ECS
  exporters render it as ISO-8601);
* ``log`` points back at the raw record (``log.file``, ``log.line``, ``log.record``)
  instead of copying it into ``event.original``.

Records are ``msgspec.Struct`` values (frozen, slotted) so the hot path decodes NDJSON or
MessagePack straight into them without building dicts. They are created with ``gc=False``:
they never form reference cycles, and keeping millions of them out of the cyclic garbage
collector's scans more than doubles decoding speed. Times, pids and ports are
:data:`Int64`.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from provarmor.model.actions import Action

Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
"""The integers that stores keep in signed 64-bit columns (times, pids, ports): decoding
refuses one that does not fit, naming the field, instead of a store failing on it later.
Others (an inode, a byte count) may use the whole unsigned 64-bit range."""


class User(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A user or group identity (``id`` is the numeric id as text, as in ECS)."""

    id: str
    name: str = ""


class ProcessRef(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Another process named by an event (the parent, a ptrace target)."""

    entity_id: str
    pid: Int64 = 0
    executable: str = ""
    command_line: str = ""


class Process(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The acting process (the subject). ``entity_id`` is its stable identity."""

    entity_id: str
    pid: Int64
    start: Int64 = 0
    """Start time, ns since the epoch; 0 when the source does not know it."""
    executable: str = ""
    name: str = ""
    args: tuple[str, ...] = ()
    command_line: str = ""
    working_directory: str = ""
    user: User | None = None
    """Effective user."""
    real_user: User | None = None
    group: User | None = None
    parent: ProcessRef | None = None
    tty: str = ""
    provarmor: bool = False
    """ProvArmor's own process: the agent recorded it in ProvArmor's cgroup (set at the
    source from the kernel's cgroup of the process, never from its name)."""


class File(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The file (or pipe, memfd, kernel module) an event touched."""

    path: str
    original_path: str = ""
    """For rename and link: the old path (``path`` is the new one)."""
    type: str = ""
    """``file``, ``dir``, ``pipe``, ``memfd``, ``module`` ... empty when unknown."""
    mode: int | None = None
    inode: int | None = None
    uid: str = ""
    gid: str = ""


class Endpoint(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """``source`` or ``destination`` of a network event."""

    ip: str = ""
    port: Int64 = 0
    address: str = ""
    """Unix socket path, or the raw address when it is neither IPv4 nor IPv6."""
    domain: str = ""


class Network(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    transport: str = ""
    """``tcp``, ``udp``, ``unix``, ``netlink`` ..."""
    direction: str = ""
    """``egress`` (we connected / sent) or ``ingress`` (we accepted / received)."""
    bytes: int = 0


class Target(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What an event acted upon besides files and sockets: a process (ptrace, kill)
    or the user/group a process switched to (setuid, setgid)."""

    process: ProcessRef | None = None
    user: User | None = None


class Account(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """ECS ``user`` of a host-log event: who logged in or asked (``name``, ``id``) and the
    account acted upon or switched to (``target``: sudo's ``USER=``, a created account)."""

    name: str = ""
    id: str = ""
    target: User | None = None


class Authentication(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """How a host-log authentication was made."""

    method: str = ""
    """``password``, ``publickey``, ``keyboard-interactive/pam`` ... (sshd's words)."""
    service: str = ""
    """The PAM service (``sshd``, ``sudo``, ``su``, ``cron`` ...) when PAM logged it."""


class Host(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    id: str
    name: str = ""
    boot_id: str = ""


class EventInfo(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    action: Action
    id: str
    """Unique per event (per host); the graph references events by it."""
    sequence: int = 0
    outcome: str = "success"
    """``success``, ``failure`` or ``unknown`` (ECS)."""
    dataset: str = ""
    """Where it came from: ``auditd``, ``ebpf``, ``cdm``, ``sysdig`` ..."""
    count: int = 1
    """How many raw records were aggregated into this one (send/recv per socket), or the
    attempts one log line reports."""
    reason: str = ""
    """Why (ECS ``event.reason``): ``invalid user``, ``user NOT in sudoers`` ... (host logs)."""
    end: int = 0
    """For an aggregated event: when its last record happened (ns since the epoch; the
    event's ``@timestamp`` is when its first did). 0: the event is one moment."""


class LogRef(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Where the raw record(s) behind this event live."""

    file: str = ""
    line: int = 0
    record: str = ""
    """Native id of the raw record: audit serial, CDM uuid, sysdig evt.num ..."""


class Container(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    id: str
    runtime: str = ""


class Event(
    Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    gc=False,
    rename={"timestamp": "@timestamp"},
):
    """One canonical event. Exactly the fields that the action uses are set."""

    timestamp: Int64
    event: EventInfo
    host: Host
    process: Process
    file: File | None = None
    source: Endpoint | None = None
    destination: Endpoint | None = None
    network: Network | None = None
    target: Target | None = None
    container: Container | None = None
    log: LogRef | None = None
    user: Account | None = None
    """Host-log events: who (see :class:`Account`)."""
    authentication: Authentication | None = None
    message: str = ""
    """Host-log events: the logged text (ECS ``message``)."""
    auditd: dict[str, str] | None = None
    """Raw audit fields (``type``, ``syscall``, ``a0``..``a3``, ``key``, ``exit`` ...) kept for
    rules written against ``service: auditd``."""
