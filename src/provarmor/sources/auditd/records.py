"""Parse one audit record into its type, time stamp, serial and fields.

Two input forms share one record type:

* a line of ``audit.log`` as auditd writes it:
  ``[node=N ]type=T msg=audit(S.ms:SERIAL): k=v ...``, in the ``RAW`` or ``ENRICHED`` log
  format (ENRICHED appends, after a 0x1d byte, upper-case interpreted fields such as
  ``SYSCALL=execve UID="root"``; they are kept apart, unparsed);
* the text of one netlink message (what the kernel sends auditd):
  ``audit(S.ms:SERIAL): k=v ...``, with the record type in the netlink header, as a number.

Values are kept as written, except strings the kernel may hex-encode (``comm``, ``exe``,
``name``, ``cwd``, ``key``, ``ocomm`` and the arguments of EXECVE records), which are
decoded here. ``proctitle`` stays encoded (decode it with :func:`decode_proctitle` when
needed: most events never need it).

The functions here are pure. :class:`RecordParser` is the importer's fast path: the same
parse, minus the stamp check (done once per event by the coalescer), with a bounded cache for
field texts that recur. Bad input raises :class:`ParseError` naming ``file:line``; nothing
else escapes.
"""

from __future__ import annotations

from typing import NamedTuple

from provarmor.model.errors import ParseError
from provarmor.model.time_units import MAX_NS, NS_PER_SECOND

MAX_RECORD_CHARS = 256 * 1024
"""Longer records are rejected (the kernel's own limit is 8970 bytes a record)."""

RECORD_TYPES: dict[int, str] = {
    1006: "LOGIN",
    1300: "SYSCALL",
    1302: "PATH",
    1303: "IPC",
    1304: "SOCKETCALL",
    1305: "CONFIG_CHANGE",
    1306: "SOCKADDR",
    1307: "CWD",
    1309: "EXECVE",
    1317: "FD_PAIR",
    1318: "OBJ_PID",
    1320: "EOE",
    1321: "BPRM_FCAPS",
    1322: "CAPSET",
    1323: "MMAP",
    1325: "NETFILTER_CFG",
    1326: "SECCOMP",
    1327: "PROCTITLE",
    1328: "FEATURE_CHANGE",
    1329: "REPLACE",
    1330: "KERN_MODULE",
    1331: "FANOTIFY",
    1332: "TIME_INJOFFSET",
    1333: "TIME_ADJNTPVAL",
    1334: "BPF",
    1335: "EVENT_LISTENER",
    1336: "URINGOP",
    1337: "OPENAT2",
    1400: "AVC",
}
"""Netlink message type -> record type name (as auditd writes ``type=``). Others become
``UNKNOWN[n]``, as auditd writes them."""

WANTED_TYPES = frozenset(
    {
        "SYSCALL", "EXECVE", "PATH", "CWD", "SOCKADDR", "PROCTITLE", "EOE",
        "MMAP", "OBJ_PID", "KERN_MODULE", "OPENAT2",
    }
)  # fmt: skip
"""Record types that take part in building events; all others are counted and skipped."""

_STRING_FIELDS = frozenset({"comm", "exe", "name", "cwd", "key", "ocomm"})
_ENRICHMENT = "\x1d"
_NO_FIELDS: dict[str, str] = {}
_CACHED_TYPES = ("PATH", "CWD", "PROCTITLE", "MMAP")
"""Record types whose whole text recurs often (the same file, directory, process)."""


class AuditRecord(NamedTuple):
    """One audit record. ``stamp`` is the ``S.ms:SERIAL`` text that ties the records of one
    event together; :attr:`timestamp` (ns since the epoch) and :attr:`serial` are read from
    it on demand (the coalescer needs them once per event, not once per record)."""

    type: str
    stamp: str
    fields: dict[str, str]
    """Field values (strings the kernel may hex-encode already decoded). Shared with the
    parser's cache: treat as read-only. Empty for records of types the parser was told to
    skip."""
    enriched: str = ""
    """The ENRICHED format's interpreted fields, unparsed ("" in the RAW format)."""
    line: int = 0
    """1-based line number in the source file (0 when it did not come from a file)."""

    @property
    def timestamp(self) -> int:
        return parse_stamp(self.stamp, line=self.line)[0]

    @property
    def serial(self) -> int:
        return parse_stamp(self.stamp, line=self.line)[1]


def parse_audit_line(text: str, *, source: str = "", line: int = 0) -> AuditRecord:
    """Parse one ``audit.log`` line (without its newline), checking its stamp."""
    kind, stamp, body = split_audit_line(text, source=source, line=line)
    parse_stamp(stamp, source=source, line=line)
    return parse_body(kind, stamp, body, source=source, line=line)


def parse_netlink_record(
    record_type: int | str, text: str, *, source: str = "netlink", line: int = 0
) -> AuditRecord:
    """Parse the text of one audit netlink message whose header carried ``record_type``
    (a number such as 1300, or a name such as ``"SYSCALL"``), checking its stamp."""
    kind = record_type_name(record_type)
    stamp, body = split_netlink_text(text, source=source, line=line)
    parse_stamp(stamp, source=source, line=line)
    return parse_body(kind, stamp, body, source=source, line=line)


def record_type_name(record_type: int | str) -> str:
    """The ``type=`` name of a netlink message type (``UNKNOWN[n]`` when not known)."""
    if isinstance(record_type, int):
        return RECORD_TYPES.get(record_type, f"UNKNOWN[{record_type}]")
    return record_type


def split_audit_line(text: str, *, source: str = "", line: int = 0) -> tuple[str, str, str]:
    """Split an ``audit.log`` line into record type, ``S.ms:SERIAL`` stamp and field text,
    without parsing the fields or the stamp."""
    head, sep, rest = text.partition(" msg=audit(")
    if head.startswith("node="):
        head = head.partition(" ")[2]
    if not sep or not head.startswith("type=") or len(head) < 6 or " " in head:
        raise _error("not a type=T msg=audit(TIME:SERIAL) record", text, source, line)
    if len(text) > MAX_RECORD_CHARS:
        raise _too_long(text, source, line)
    stamp, sep, body = rest.partition("):")
    if not sep:
        raise _error("unterminated audit(TIME:SERIAL) stamp", text, source, line)
    return head[5:], stamp, body[1:] if body.startswith(" ") else body


def split_netlink_text(text: str, *, source: str = "", line: int = 0) -> tuple[str, str]:
    """Split ``audit(S.ms:SERIAL): fields`` into the stamp and the field text."""
    if len(text) > MAX_RECORD_CHARS:
        raise _too_long(text, source, line)
    if not text.startswith("audit("):
        raise _error("no audit(TIME:SERIAL) stamp", text, source, line)
    stamp, sep, body = text[6:].partition("):")
    if not sep:
        raise _error("unterminated audit(TIME:SERIAL) stamp", text, source, line)
    return stamp, body[1:] if body.startswith(" ") else body


def parse_body(kind: str, stamp: str, body: str, *, source: str = "", line: int = 0) -> AuditRecord:
    """Build the record from an already split line: parse and decode the fields."""
    raw, _, enriched = body.partition(_ENRICHMENT)
    fields = parse_fields(raw, source=source, line=line)
    decode_fields(kind, fields, source=source, line=line)
    return AuditRecord(kind, stamp, fields, enriched, line)


def decode_fields(kind: str, fields: dict[str, str], *, source: str = "", line: int = 0) -> None:
    """Decode, in place, the fields of a ``kind`` record that may be hex-encoded strings."""
    if kind == "EXECVE":
        for name, value in fields.items():
            # aN is one whole argument; the aN[k] chunks of a long one stay encoded until
            # they are joined (a chunk may end inside a multi-byte character)
            if name[:1] == "a" and name[1:].isdigit():
                fields[name] = decode_string(value, source=source, line=line)
        return
    for name in _STRING_FIELDS.intersection(fields):
        fields[name] = decode_string(fields[name], source=source, line=line)


def parse_stamp(stamp: str, *, source: str = "", line: int = 0) -> tuple[int, int]:
    """``"1700000000.123:456"`` -> (1700000000123000000 ns, 456)."""
    seconds, dot, rest = stamp.partition(".")
    fraction, colon, serial = rest.partition(":")
    if not (
        dot
        and colon
        and seconds.isdigit()
        and fraction.isdigit()
        and serial.isdigit()
        and len(seconds) <= 12
        and len(fraction) <= 9
        and len(serial) <= 20
    ):
        raise _error("malformed audit(TIME:SERIAL) stamp", stamp, source, line)
    try:
        nanos = int(fraction) * 10 ** (9 - len(fraction))
        timestamp, number = int(seconds) * NS_PER_SECOND + nanos, int(serial)
    except ValueError:  # non-ASCII digits pass isdigit() but not always int()
        raise _error("malformed audit(TIME:SERIAL) stamp", stamp, source, line) from None
    if timestamp > MAX_NS:
        raise _error("audit(TIME:SERIAL) stamp past the year 2262", stamp, source, line)
    return timestamp, number


def parse_fields(raw: str, *, source: str = "", line: int = 0) -> dict[str, str]:
    """``k=v k2=v2 ...`` -> dict. Kernel records never hold a space inside a value (such
    strings are hex-encoded), so splitting at spaces is exact for them."""
    tokens = raw.replace(" ", "=").split("=")
    if len(tokens) == 2 * raw.count(" ") + 2:  # every item holds exactly one '='
        pairs = iter(tokens)
        return dict(zip(pairs, pairs, strict=False))
    fields: dict[str, str] = {}  # an '=' inside a value, an item without one, empty items
    for item in raw.split(" "):
        key, sep, value = item.partition("=")
        if sep and key:
            fields[key] = value
        elif item:
            raise _error(f"field without '=': {item[:40]!r}", raw, source, line)
    return fields


class RecordParser:
    """Parses ``audit.log`` lines like :func:`parse_audit_line`, faster: records of types
    outside ``wanted`` get no fields, and field texts that recur (a process's SYSCALL
    fields after ``items=``, PATH, CWD, PROCTITLE...) are parsed once and shared from a
    bounded cache. The stamp is not checked here (the coalescer checks it once per event).
    """

    MAX_CACHED_CHARS = 512

    def __init__(self, *, wanted: frozenset[str] = WANTED_TYPES, cache_size: int = 4096) -> None:
        self.wanted = wanted
        self._caches: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in _CACHED_TYPES}
        self._syscall_cache: dict[str, dict[str, str]] = {}
        self._cache_size = cache_size

    def parse_line(self, text: str, *, source: str = "", line: int = 0) -> AuditRecord:
        """Parse one line; a record of an unwanted type comes back with no fields."""
        head, sep, rest = text.partition(" msg=audit(")
        kind = head[5:]
        stamp, sep2, body = rest.partition("): ")
        if (
            not sep2
            or head[:5] != "type="
            or not kind
            or " " in kind
            or len(text) > MAX_RECORD_CHARS
        ):  # unusual (node= prefix) or bad: the careful path sorts it out
            kind, stamp, body = split_audit_line(text, source=source, line=line)
        if kind not in self.wanted:
            return AuditRecord(kind, stamp, _NO_FIELDS, "", line)
        raw, _, enriched = body.partition(_ENRICHMENT)
        if kind == "SYSCALL":
            head, sep, tail = raw.partition(" items=")
            if sep:
                fields = parse_fields(head, source=source, line=line)
                suffix = self._syscall_cache.get(tail)
                if suffix is None:
                    suffix = self._remember(
                        self._syscall_cache, tail, "SYSCALL", "items=" + tail, (source, line)
                    )
                fields.update(suffix)
                return AuditRecord(kind, stamp, fields, enriched, line)
        elif kind in self._caches:
            cache = self._caches[kind]
            fields = cache.get(raw) or self._remember(cache, raw, kind, raw, (source, line))
            return AuditRecord(kind, stamp, fields, enriched, line)
        fields = parse_fields(raw, source=source, line=line)
        decode_fields(kind, fields, source=source, line=line)
        return AuditRecord(kind, stamp, fields, enriched, line)

    def _remember(
        self,
        cache: dict[str, dict[str, str]],
        key: str,
        kind: str,
        raw: str,
        where: tuple[str, int],
    ) -> dict[str, str]:
        fields = parse_fields(raw, source=where[0], line=where[1])
        decode_fields(kind, fields, source=where[0], line=where[1])
        if len(raw) <= self.MAX_CACHED_CHARS:
            if len(cache) >= self._cache_size:
                cache.clear()
            cache[key] = fields
        return fields


def decode_string(value: str, *, source: str = "", line: int = 0) -> str:
    """Decode an audit "untrusted string": ``"text"`` as is, hex digits decoded (UTF-8,
    undecodable bytes shown as ``\\xNN``), ``(null)``/``(none)`` as empty."""
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"'):
            raise _error("unterminated quoted value", value, source, line)
        return value[1:-1]
    if value in ("(null)", "(none)"):
        return ""
    return decode_bytes(value, source=source, line=line).decode("utf-8", "backslashreplace")


def decode_bytes(value: str, *, source: str = "", line: int = 0) -> bytes:
    """The bytes of an audit string value, quoted (UTF-8 text) or hex."""
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"'):
            raise _error("unterminated quoted value", value, source, line)
        return value[1:-1].encode("utf-8", "surrogateescape")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _error("value is neither quoted nor hex", value, source, line) from None


def decode_proctitle(value: str, *, source: str = "", line: int = 0) -> tuple[str, ...]:
    """The argv in a PROCTITLE record (hex of NUL-separated arguments, or one quoted
    string). The kernel truncates it to 128 bytes."""
    if value.startswith('"'):
        return (decode_string(value, source=source, line=line),)
    text = decode_string(value, source=source, line=line)
    return tuple(text.rstrip("\0").split("\0"))


def _too_long(text: str, source: str, line: int) -> ParseError:
    return ParseError(
        f"record of {len(text)} characters exceeds {MAX_RECORD_CHARS}",
        location=_location(source, line),
    )


def _location(source: str, line: int) -> str:
    return f"{source}:{line}" if line else source


def _error(message: str, text: str, source: str, line: int) -> ParseError:
    shown = text[:60].encode("ascii", "backslashreplace").decode("ascii")
    return ParseError(f"{message} ({shown!r})", location=_location(source, line))
