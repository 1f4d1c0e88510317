"""The kernel's audit netlink socket (``NETLINK_AUDIT``): its wire formats and one socket type.

What goes over it:

* every message starts with a ``struct nlmsghdr`` (length, type, flags, sequence, port id);
* ``AUDIT_GET`` asks for the ``struct audit_status`` (enabled flag, the audit daemon's pid,
  backlog and rate limits, the ``lost`` counter, the current backlog...), ``AUDIT_SET``
  changes the fields named in its ``mask``; the socket that sets ``pid`` to its own process
  becomes the one the kernel sends every audit record to (one record a message, its type
  number in the header, its text as the payload);
* ``AUDIT_ADD_RULE``/``AUDIT_DEL_RULE``/``AUDIT_LIST_RULES`` carry ``struct
  audit_rule_data`` (filter list, action, syscall bit mask, up to 64 ``field op value``
  conditions, and a buffer for the string values such as the rule's key).

The parse and encode functions are pure (bytes in, value out, :class:`ParseError` for a
malformed message). :class:`AuditSocket` does the I/O: request/reply exchanges with
sequence numbers, and raw receives for the record reader. The last functions say whether
this process may use the socket at all (privilege, kernel support, namespaces, another
process holding the audit pid) with an :class:`AuditUnavailable` that says what to do, and
clear rules a crashed agent left. Which rules and settings the agent wants is decided by
:mod:`provarmor.sources.auditd.live`.

One module because the wire formats, the socket that speaks them and the checks made on it
share their constants and are read together; none of it knows about events.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from provarmor.model.errors import ConfigError, ParseError, ProvArmorError
from provarmor.sources.auditd.rules import (
    AARCH64_AUDITCTL_ARCH,
    AUDIT_RULES,
    AUDITCTL_ARCH,
    AuditRule,
)
from provarmor.sources.auditd.syscalls import NUMBERS

_log = logging.getLogger(__name__)

NETLINK_AUDIT = 9
CAP_AUDIT_CONTROL = 30

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4

AUDIT_GET = 1000
AUDIT_SET = 1001
AUDIT_ADD_RULE = 1011
AUDIT_DEL_RULE = 1012
AUDIT_LIST_RULES = 1013
AUDIT_FIRST_RECORD = 1100
"""Message types from here on are audit records (user messages from 1100, kernel from 1300);
below are commands and their replies."""

AUDIT_STATUS_ENABLED = 0x01
AUDIT_STATUS_FAILURE = 0x02
AUDIT_STATUS_PID = 0x04
AUDIT_STATUS_RATE_LIMIT = 0x08
AUDIT_STATUS_BACKLOG_LIMIT = 0x10
AUDIT_STATUS_BACKLOG_WAIT_TIME = 0x20
AUDIT_STATUS_LOST = 0x40

AUDIT_FILTER_EXIT = 0x04
AUDIT_FILTER_PREPEND = 0x10
AUDIT_NEVER = 0
AUDIT_ALWAYS = 2

AUDIT_PID = 0
AUDIT_ARCH = 11
AUDIT_ARG0 = 200
AUDIT_FILTERKEY = 210

AUDIT_BIT_MASK = 0x08000000
AUDIT_LESS_THAN = 0x10000000
AUDIT_GREATER_THAN = 0x20000000
AUDIT_NOT_EQUAL = 0x30000000
AUDIT_EQUAL = 0x40000000
AUDIT_BIT_TEST = AUDIT_BIT_MASK | AUDIT_EQUAL
AUDIT_LESS_THAN_OR_EQUAL = AUDIT_LESS_THAN | AUDIT_EQUAL
AUDIT_GREATER_THAN_OR_EQUAL = AUDIT_GREATER_THAN | AUDIT_EQUAL

STRING_FIELDS = frozenset({13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 105, 107, 112, 210})
"""Field types whose value is a string in the rule's buffer (the value holds its length):
SELinux subject/object labels, ``path``/``dir`` watches, ``exe`` and ``key``."""

MAX_FIELDS = 64
BITMASK_WORDS = 64
SYSCALL_CLASS_BITS = 16
"""The top bits of the last mask word name syscall classes, not syscalls: the kernel
replaces each set one by its class's syscalls and clears it, so rules list without them."""
ALL_SYSCALLS: tuple[int, ...] = (0xFFFFFFFF,) * (BITMASK_WORDS - 1) + (
    0xFFFFFFFF >> SYSCALL_CLASS_BITS,
)
"""The syscall mask of a rule for every syscall (``-S all``), as the kernel stores it."""

_HEADER = struct.Struct("=IHHII")
HEADER_SIZE = _HEADER.size
_STATUS_FIELDS = (
    "mask",
    "enabled",
    "failure",
    "pid",
    "rate_limit",
    "backlog_limit",
    "lost",
    "backlog",
    "feature_bitmap",
    "backlog_wait_time",
    "backlog_wait_time_actual",
)
_STATUS = struct.Struct(f"={len(_STATUS_FIELDS)}I")
_STATUS_MIN_BYTES = 32
"""Kernels before 3.12 send only the first eight fields."""
_RULE = struct.Struct(f"=3I{BITMASK_WORDS}I{3 * MAX_FIELDS}II")
_ERROR = struct.Struct("=i")
_RECEIVE_BYTES = 65536
SO_RCVBUFFORCE = 33
"""Not in Python's socket module: set the receive buffer past ``net.core.rmem_max``."""
DEFAULT_TIMEOUT_S = 2.0
_CONDITION = re.compile(r"^(a[0-3])(&=|&|!=|<=|>=|=|<|>)(\S+)$")
_OPERATORS = {
    "=": AUDIT_EQUAL,
    "!=": AUDIT_NOT_EQUAL,
    "<": AUDIT_LESS_THAN,
    ">": AUDIT_GREATER_THAN,
    "<=": AUDIT_LESS_THAN_OR_EQUAL,
    ">=": AUDIT_GREATER_THAN_OR_EQUAL,
    "&": AUDIT_BIT_MASK,
    "&=": AUDIT_BIT_TEST,
}


class AuditUnavailable(ProvArmorError):
    """The audit sensor cannot run on this host; the message says why and what to do."""


class AuditBusy(AuditUnavailable):
    """Another process (auditd, another agent...) receives the kernel's audit records."""


class NetlinkMessage(NamedTuple):
    """One netlink message: header fields and the payload after the header."""

    type: int
    flags: int
    seq: int
    port: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditStatus:
    """``struct audit_status``. Fields a short (old kernel) reply lacks read as 0."""

    mask: int = 0
    enabled: int = 0
    """0 off, 1 on, 2 on and locked (rules and settings cannot change until reboot)."""
    failure: int = 0
    pid: int = 0
    """The process the kernel sends records to (0: none)."""
    rate_limit: int = 0
    backlog_limit: int = 0
    lost: int = 0
    """Records the kernel has dropped since boot (or since the counter was reset)."""
    backlog: int = 0
    """Records queued in the kernel now, waiting to be sent."""
    feature_bitmap: int = 0
    backlog_wait_time: int = 0
    """Jiffies a process waits for room when the backlog is full before its record is lost."""
    backlog_wait_time_actual: int = 0


def parse_audit_status(payload: bytes) -> AuditStatus:
    """Decode an ``AUDIT_GET`` reply's payload."""
    if len(payload) < _STATUS_MIN_BYTES:
        raise ParseError(f"audit_status of {len(payload)} bytes is too short", location="netlink")
    padded = bytes(payload[: _STATUS.size]).ljust(_STATUS.size, b"\0")
    return AuditStatus(**dict(zip(_STATUS_FIELDS, _STATUS.unpack(padded), strict=True)))


def encode_audit_status(status: AuditStatus) -> bytes:
    """The payload of an ``AUDIT_SET`` request (only fields named in ``status.mask`` apply)."""
    return _STATUS.pack(*(getattr(status, name) for name in _STATUS_FIELDS))


def encode_message(msg_type: int, payload: bytes = b"", *, flags: int, seq: int) -> bytes:
    """One netlink message to the kernel (port 0), padded to a 4-byte boundary."""
    length = HEADER_SIZE + len(payload)
    padding = b"\0" * (-length % 4)
    return _HEADER.pack(length, msg_type, flags, seq, 0) + payload + padding


def parse_messages(data: bytes | memoryview) -> list[NetlinkMessage]:
    """Split a received datagram into its messages. A header whose length runs past the
    data, or is shorter than a header, raises :class:`ParseError`.

    An audit record (type from :data:`AUDIT_FIRST_RECORD` on) always travels alone, and the
    kernel sets its ``nlmsg_len`` to the payload's length only, header excluded, on the
    unicast path (the multicast path counts the header): its payload is the rest of the
    datagram, whatever the length says.
    """
    messages: list[NetlinkMessage] = []
    offset = 0
    end = len(data)
    while end - offset >= HEADER_SIZE:
        length, msg_type, flags, seq, port = _HEADER.unpack_from(data, offset)
        if msg_type >= AUDIT_FIRST_RECORD:
            payload = bytes(data[offset + HEADER_SIZE : end])
            messages.append(NetlinkMessage(msg_type, flags, seq, port, payload))
            break
        if length < HEADER_SIZE or offset + length > end:
            raise ParseError(f"netlink message length {length} is invalid", location="netlink")
        payload = bytes(data[offset + HEADER_SIZE : offset + length])
        messages.append(NetlinkMessage(msg_type, flags, seq, port, payload))
        offset += (length + 3) & ~3
    return messages


def record_text(payload: bytes) -> str:
    """The text of an audit record message (the kernel may end it with NUL bytes)."""
    end = payload.find(b"\0")
    raw = payload if end < 0 else payload[:end]
    return raw.decode("utf-8", "backslashreplace")


def parse_error_code(payload: bytes) -> int:
    """The errno an ``NLMSG_ERROR`` message reports (0: an acknowledgement)."""
    if len(payload) < _ERROR.size:
        raise ParseError("NLMSG_ERROR without an error code", location="netlink")
    return -int(_ERROR.unpack_from(payload)[0])


@dataclass(frozen=True, slots=True)
class RuleField:
    """One ``field op value`` condition. String fields (:data:`STRING_FIELDS`) carry
    ``text`` and value 0; on the wire their value is the text's length in bytes."""

    field: int
    op: int
    value: int = 0
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRuleData:
    """``struct audit_rule_data``: one rule of one filter list."""

    filter: int
    """Filter list (``AUDIT_FILTER_EXIT``...), plus ``AUDIT_FILTER_PREPEND`` to add it first."""
    action: int
    mask: tuple[int, ...]
    """The syscall bit mask, :data:`BITMASK_WORDS` 32-bit words."""
    fields: tuple[RuleField, ...] = ()

    @property
    def key(self) -> str:
        """The rule's key (``-k``), "" when it has none."""
        return next((f.text for f in self.fields if f.field == AUDIT_FILTERKEY), "")

    def value_of(self, field: int) -> int | None:
        """The value of the first condition on ``field``, or None."""
        return next((f.value for f in self.fields if f.field == field), None)

    def stored(self) -> AuditRuleData:
        """The rule as the kernel keeps (and lists) it: without the prepend flag. A delete
        request must give this form; the kernel removes only an exact match."""
        if not self.filter & AUDIT_FILTER_PREPEND:
            return self
        return dataclasses.replace(self, filter=self.filter & ~AUDIT_FILTER_PREPEND)


def syscall_mask(numbers: Iterable[int]) -> tuple[int, ...]:
    """The bit mask selecting syscalls ``numbers``."""
    words = [0] * BITMASK_WORDS
    for number in numbers:
        if not 0 <= number < 32 * BITMASK_WORDS - SYSCALL_CLASS_BITS:
            raise ValueError(f"syscall number {number} is out of range")
        words[number // 32] |= 1 << (number % 32)
    return tuple(words)


def mask_syscalls(mask: tuple[int, ...]) -> list[int]:
    """The syscall numbers a mask selects."""
    return [
        32 * index + bit
        for index, word in enumerate(mask)
        for bit in range(32)
        if word & (1 << bit)
    ]


def encode_rule(rule: AuditRuleData) -> bytes:
    """The payload of an ``AUDIT_ADD_RULE``/``AUDIT_DEL_RULE`` request."""
    if len(rule.fields) > MAX_FIELDS:
        raise ValueError(f"a rule holds at most {MAX_FIELDS} fields, not {len(rule.fields)}")
    if len(rule.mask) != BITMASK_WORDS:
        raise ValueError(f"a syscall mask has {BITMASK_WORDS} words, not {len(rule.mask)}")
    fields = [0] * MAX_FIELDS
    values = [0] * MAX_FIELDS
    ops = [0] * MAX_FIELDS
    buffer = bytearray()
    for index, condition in enumerate(rule.fields):
        fields[index] = condition.field
        ops[index] = condition.op
        if condition.field in STRING_FIELDS:
            text = condition.text.encode()
            values[index] = len(text)
            buffer += text
        else:
            values[index] = condition.value & 0xFFFFFFFF
    head = _RULE.pack(
        rule.filter,
        rule.action,
        len(rule.fields),
        *rule.mask,
        *fields,
        *values,
        *ops,
        len(buffer),
    )
    return head + bytes(buffer)


def parse_rule(payload: bytes) -> AuditRuleData:
    """Decode one ``AUDIT_LIST_RULES`` reply (a ``struct audit_rule_data``)."""
    if len(payload) < _RULE.size:
        raise ParseError(f"audit_rule_data of {len(payload)} bytes is too short", location="rule")
    words = _RULE.unpack_from(payload)
    flags, action, count = words[0:3]
    mask = tuple(words[3 : 3 + BITMASK_WORDS])
    base = 3 + BITMASK_WORDS
    fields = words[base : base + MAX_FIELDS]
    values = words[base + MAX_FIELDS : base + 2 * MAX_FIELDS]
    ops = words[base + 2 * MAX_FIELDS : base + 3 * MAX_FIELDS]
    buffer = payload[_RULE.size : _RULE.size + words[-1]]
    if count > MAX_FIELDS or len(buffer) != words[-1]:
        raise ParseError("audit_rule_data field count or buffer length is invalid", location="rule")
    conditions: list[RuleField] = []
    offset = 0
    for index in range(count):
        field, value = fields[index], values[index]
        if field in STRING_FIELDS:
            if offset + value > len(buffer):
                raise ParseError("audit_rule_data string runs past its buffer", location="rule")
            text = buffer[offset : offset + value].decode("utf-8", "backslashreplace")
            offset += value
            conditions.append(RuleField(field, ops[index], text=text))
        else:
            conditions.append(RuleField(field, ops[index], value))
    return AuditRuleData(filter=flags, action=action, mask=mask, fields=tuple(conditions))


def kernel_rules(
    rules: Iterable[AuditRule] = AUDIT_RULES,
    *,
    arches: Sequence[str] = ("b64", "b32"),
    io: bool = False,
    host_arch: str = "x86_64",
) -> list[AuditRuleData]:
    """``auditctl``-style rules (ProvArmor's by default) as kernel rules, one per rule and
    ABI (``b64``, ``b32``). Syscalls an ABI lacks are left out, and so are rules left empty."""
    table = AARCH64_AUDITCTL_ARCH if host_arch == "aarch64" else AUDITCTL_ARCH
    built: list[AuditRuleData] = []
    for arch in arches:
        if arch not in table:
            continue
        numbers = NUMBERS[table[arch]]
        for rule in rules:
            selected = [numbers[name] for name in rule.syscalls if name in numbers]
            if (rule.io and not io) or not selected:
                continue
            conditions = [
                RuleField(AUDIT_ARCH, AUDIT_EQUAL, int(table[arch], 16)),
                *(parse_condition(text) for text in rule.filters),
                RuleField(AUDIT_FILTERKEY, AUDIT_EQUAL, text=rule.key),
            ]
            built.append(
                AuditRuleData(
                    filter=AUDIT_FILTER_EXIT,
                    action=AUDIT_ALWAYS,
                    mask=syscall_mask(selected),
                    fields=tuple(conditions),
                )
            )
    return built


def parse_condition(text: str) -> RuleField:
    """An ``auditctl -F`` condition on a syscall argument (``a2&0x4``) as a rule field."""
    match = _CONDITION.match(text)
    if match is None:
        raise ConfigError(f"unsupported audit rule condition {text!r} (expected aN<op>VALUE)")
    name, operator, value = match.groups()
    try:
        number = int(value, 0)
    except ValueError:
        raise ConfigError(f"audit rule condition {text!r}: {value!r} is not a number") from None
    return RuleField(AUDIT_ARG0 + int(name[1]), _OPERATORS[operator], number)


class AuditSocket:
    """A ``NETLINK_AUDIT`` socket bound to this process.

    Requests (:meth:`get_status`, :meth:`set_status`, rules) wait for their reply or
    acknowledgement; records and other messages that arrive meanwhile (on the socket that
    is the audit pid) are kept, in order, in :attr:`unsolicited`. Use one socket from one
    thread at a time.

    Raises:
        OSError: the socket cannot be opened (``EPROTONOSUPPORT``: no audit in this kernel).
    """

    def __init__(self, *, receive_buffer: int = 0, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        try:
            if receive_buffer:
                _set_receive_buffer(self._sock, receive_buffer)
            self._sock.bind((0, 0))
        except OSError:
            self._sock.close()
            raise
        self.timeout = timeout
        self._seq = 0
        self.unsolicited: list[NetlinkMessage] = []

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> AuditSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def receive_into(self, buffer: bytearray | memoryview) -> int:
        """One datagram into ``buffer``; raises ``BlockingIOError`` when none is waiting (on
        a non-blocking socket) and ``OSError(ENOBUFS)`` when the kernel dropped some."""
        return self._sock.recv_into(buffer)

    def get_status(self) -> AuditStatus:
        (reply,) = self.request(AUDIT_GET, reply_type=AUDIT_GET)
        return parse_audit_status(reply.payload)

    def set_status(self, status: AuditStatus) -> None:
        """Apply the fields ``status.mask`` names; raises ``OSError`` with the kernel's errno."""
        self.request(AUDIT_SET, encode_audit_status(status))

    def add_rule(self, rule: AuditRuleData) -> None:
        self.request(AUDIT_ADD_RULE, encode_rule(rule))

    def delete_rule(self, rule: AuditRuleData) -> None:
        self.request(AUDIT_DEL_RULE, encode_rule(rule))

    def list_rules(self) -> list[AuditRuleData]:
        return [parse_rule(m.payload) for m in self.request(AUDIT_LIST_RULES, reply_type=-1)]

    def request(
        self, msg_type: int, payload: bytes = b"", *, reply_type: int | None = None
    ) -> list[NetlinkMessage]:
        """Send one request and wait for its answer.

        Args:
            reply_type: None: wait for the acknowledgement; a type: return the first reply
                of that type; -1: collect a multi-part reply up to ``NLMSG_DONE``.

        Raises:
            OSError: the kernel refused the request (its errno), or no answer came in time
                (``ETIMEDOUT``).
        """
        self._seq = self._seq % 0x7FFFFFFF + 1
        seq = self._seq
        flags = NLM_F_REQUEST | (NLM_F_ACK if reply_type is None else 0)
        self._sock.sendto(encode_message(msg_type, payload, flags=flags, seq=seq), (0, 0))
        deadline = time.monotonic() + self.timeout
        replies: list[NetlinkMessage] = []
        while True:
            for message in self._receive(deadline):
                if message.seq != seq or message.type >= AUDIT_FIRST_RECORD:
                    self.unsolicited.append(message)
                elif message.type == NLMSG_ERROR:
                    code = parse_error_code(message.payload)
                    if code:
                        raise OSError(code, f"{os.strerror(code)} (audit request {msg_type})")
                    if reply_type is None:
                        return replies
                elif message.type == NLMSG_DONE or (
                    message.type == reply_type and not message.flags & NLM_F_MULTI
                ):
                    return [*replies, message] if message.type == reply_type else replies
                elif reply_type == -1 or message.type == reply_type:
                    replies.append(message)

    def _receive(self, deadline: float) -> list[NetlinkMessage]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OSError(errno.ETIMEDOUT, "no answer from the kernel's audit netlink socket")
        blocking_timeout = self._sock.gettimeout()
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(_RECEIVE_BYTES)
        except TimeoutError:
            return []
        finally:
            self._sock.settimeout(blocking_timeout)
        return parse_messages(data)


def _set_receive_buffer(sock: socket.socket, size: int) -> None:
    """SO_RCVBUFFORCE (past ``net.core.rmem_max``, needs CAP_NET_ADMIN), else SO_RCVBUF."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


# -- who may use the socket, and what a dead agent left behind ---------------------------


def check_privileges(status_file: Path = Path("/proc/self/status")) -> None:
    """Raise :class:`AuditUnavailable` unless this process has CAP_AUDIT_CONTROL."""
    for line in status_file.read_text().splitlines():
        if line.startswith("CapEff:"):
            if int(line.split()[1], 16) >> CAP_AUDIT_CONTROL & 1:
                return
            break
    raise AuditUnavailable(
        f"the audit sensor needs root (CAP_AUDIT_CONTROL); running as uid {os.geteuid()}"
    )


def open_audit_socket() -> AuditSocket:
    """A new socket; :class:`AuditUnavailable` when the kernel has no audit."""
    try:
        return AuditSocket()
    except OSError as exc:
        if exc.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
            raise AuditUnavailable(
                "this kernel has no audit support (CONFIG_AUDIT); use `--sensor ebpf`"
            ) from exc
        raise AuditUnavailable(f"cannot open the audit netlink socket: {exc}") from exc


def read_status(control: AuditSocket) -> AuditStatus:
    """The status; :class:`AuditUnavailable` saying why when the kernel refuses."""
    try:
        return control.get_status()
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            reason = "the kernel accepts audit requests only from the initial user namespace"
        elif exc.errno == errno.EPERM:
            reason = "not permitted (CAP_AUDIT_CONTROL, initial pid namespace)"
        else:
            reason = str(exc)
        raise AuditUnavailable(f"kernel audit is not available here: {reason}") from exc


def check_owner(status: AuditStatus) -> None:
    """Raise :class:`AuditBusy`, naming it, when a live process holds the audit pid."""
    pid = status.pid
    if not pid:
        return
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        _log.info("audit pid %d is not a live process; taking over", pid)
        return
    who = "this process: another AuditLiveSource runs here" if pid == os.getpid() else comm
    raise AuditBusy(
        f"kernel audit records already go to pid {pid} ({who}); only one process can receive "
        f"them. Stop it first (auditd: `systemctl stop auditd` or `auditctl --signal stop`; "
        f"otherwise `kill {pid}`), or run the agent with `--sensor ebpf`."
    )


def remove_stale_rules(
    control: AuditSocket, ours: Sequence[AuditRuleData], *, self_key: str
) -> None:
    """Remove what an agent that died without stopping left: its ``never`` rules keyed
    ``self_key`` whose pid is gone and, when there were such, the rules identical to ``ours``
    (which it had installed)."""
    try:
        loaded = control.list_rules()
    except (OSError, ParseError) as exc:
        _log.warning("could not list the audit rules: %s", exc)
        return
    stale = [
        rule
        for rule in loaded
        if rule.key == self_key
        and rule.action == AUDIT_NEVER
        and not Path(f"/proc/{rule.value_of(AUDIT_PID)}").exists()
    ]
    if not stale:
        return
    stale += [rule for rule in loaded if rule in ours]
    _log.warning("removing %d audit rules left by a ProvArmor agent that did not stop", len(stale))
    for rule in stale:
        try:
            control.delete_rule(rule)
        except OSError as exc:
            _log.warning("could not remove stale audit rule %s: %s", rule.key, exc)
