"""The line protocol between the bpftrace program and the decoder, and its pure parser.

bpftrace runs with ``-f json``: every output is one JSON object on one line. Our program only
uses ``printf`` (records), ``print`` of two aggregation maps (socket byte counts), and
bpftrace itself adds ``attached_probes`` and ``lost_events`` lines.

Why JSON output and not tab-separated text: bpftrace's text ``printf`` writes strings raw, so
an argv element or a file name holding a newline or a tab could forge a record (paths and
argv are attacker-controlled). In JSON mode bpftrace escapes the whole ``printf`` result, so a
record is always exactly one line. Inside a record we still use tabs, and put at most ONE free
string per line, always last: splitting the escaped text on the first ``n`` escaped tabs can
never cut into the string. Records that carry more strings send them first on ``s`` lines
(``s<TAB>tid<TAB>ns<TAB>string``), in the same probe run as their header line; probe runs are
not preempted, so those lines sit in the same per-CPU buffer, in order, just before it.

We parse the escaped text ourselves instead of calling a JSON decoder: it is faster (a slice
and a split per line, numbers are never escaped) and bpftrace 0.17 writes bytes >= 0x80 as
``\\uffffffXX`` (a sign-extended ``char``), which is not valid JSON. The unescaper below
maps every escape bpftrace emits back to the exact byte, so hostile strings round-trip; text
that is not UTF-8 is rendered with ``\\xNN`` escapes.

Every header line starts ``KIND ns tid pid start``: ``ns`` is ``CLOCK_MONOTONIC`` at the
probe, ``pid`` the thread group id, ``start`` the process's ``start_boottime`` in ns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from provarmor.model.errors import ParseError

COMMON_FIELDS = ("ns", "tid", "pid", "start")
"""The fields every header line starts with, after its kind letter."""

LAYOUTS: dict[str, tuple[str, ...]] = {
    "b": (),
    "e": (),
    "h": (),
    "V": ("argc", "more"),
    "Z": ("complete",),
    "E": ("old_pid", "ppid", "pstart", "uid", "euid", "gid", "egid"),
    "X": ("ret",),
    "F": ("ppid", "pstart", "uid", "euid", "gid", "egid"),
    "J": ("child", "level"),
    "Q": ("code",),
    "L": (),
    "I": (),
    "O": ("ret", "dfd", "flags", "fmode"),
    "U": ("ret", "dfd", "flags"),
    "R": ("ret", "olddfd", "newdfd", "flags"),
    "K": ("ret", "olddfd", "newdfd", "symbolic"),
    "M": ("ret", "dfd", "mode"),
    "C": ("ret", "dfd", "uid", "gid"),
    "H": ("ret", "dfd"),
    "N": ("ret", "fd", "family", "port", "proto", "lport"),
    "A": ("ret", "fd", "family", "proto", "lport", "rport"),
    "B": ("ret", "fd", "family", "port", "proto"),
    "G": ("ret", "fd", "backlog", "family", "proto", "lport"),
    "S": ("fd", "family", "proto", "lport", "rport"),
    "T": ("ret", "group", "a0", "a1", "a2", "new_real", "new_eff"),
    "P": ("ret", "request", "target"),
    "Y": ("ret", "fd", "length"),
    "D": ("ret", "flags"),
    "W": ("ret", "fd", "prot", "ino"),
}
"""Per record kind, the numeric fields after the common ones. The last field of every header
line is one free string (a path, an address, a name; empty when the kind has none).

What the kinds are, and which strings come first on ``s`` lines:

* ``b`` the program started (BEGIN: every probe is attached); ``e`` it ended (END, after
  the last socket counts); ``h`` heartbeat (once per
  flush period); ``V`` argv of an execve (``argc`` ``s`` lines);
  ``Z`` working directory at an exec (``s`` lines: its components, leaf first;
  ``complete`` 0 when the walk was cut short); ``E`` exec done (string: the program run,
  as passed to execve);
  ``X`` execve failed (string: the program); ``F`` a new process returned from fork/clone
  (it is the child; ``ppid`` is its parent when it first ran: init or a subreaper when
  its creator had already exited); ``J`` the creator's side of the same fork: ``child`` is
  the new pid as the creator sees it, ``level`` the creator's pid namespace depth (0: the
  initial namespace, where that pid is the one the other records carry);
  ``Q`` a process (its whole thread group) exited; ``L`` the process runs in ProvArmor's
  own cgroup or a group directly below it (printed just before its ``F`` and its ``E`` when
  it does; recordings made before this record existed simply have none); ``I`` the
  process has a controlling terminal at its exec (string: the kernel's name of it,
  ``pts0``, ``tty1``, as audit's ``tty=``; printed by the probe that runs just before the
  one of its ``E``, microseconds earlier; none: no terminal, or a recording older than this
  record).
* ``O`` open; ``U`` unlink/rmdir; ``R`` rename (one ``s`` line: old path; string: new);
  ``K`` link/symlink (same); ``M`` chmod; ``C`` chown; ``H`` chdir (string empty: fchdir).
* ``N`` connect (one ``s`` line: local ip; string: remote ip or unix path); ``A`` accept
  (same); ``B`` bind (string: the address); ``G`` listen (string: local ip); ``S`` first
  send/recv on a socket in this period (same as ``A``).
* ``T`` setuid/setgid family (string: the syscall); ``P`` ptrace; ``Y`` module load;
  ``D`` memfd_create (string: the name); ``W`` executable file mapping (string: basename).
"""

STRING_KIND = "s"
RECORDS_MAP = "@records"
"""The count of every record the program printed (printed once, at END)."""
IO_MAPS = ("@io0", "@io1")
"""The two aggregation maps (double-buffered; see :mod:`provarmor.sources.ebpf.program`)."""
IO_FIRST_MAPS = ("@if0", "@if1")
"""Per socket and direction, the record time of its first byte in the period."""
IO_LAST_MAPS = ("@il0", "@il1")
"""... and of its last byte (``max``). Both are printed just before their byte counts."""
IO_GENERATIONS = tuple(zip(IO_FIRST_MAPS, IO_LAST_MAPS, IO_MAPS, strict=True))
"""The maps of each generation, in the order they are printed."""

_PRINTF_HEAD = b'{"type": "printf", "data": "'
_PRINTF_TAIL = b'\\n"}'
_TAB = b"\\t"
_ESCAPE = re.compile(rb"\\(u(?:ffffff|00)[0-9a-fA-F]{2}|.|\Z)", re.DOTALL)
_SIMPLE_ESCAPES = {
    b'"': b'"',
    b"\\": b"\\",
    b"/": b"/",
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
}


@dataclass(frozen=True, slots=True)
class Header:
    """One record header: kind, the common fields, the kind's numbers and the free string."""

    kind: str
    ns: int
    tid: int
    pid: int
    start: int
    values: tuple[int, ...]
    text: str


@dataclass(frozen=True, slots=True)
class StringPart:
    """An extra string of the record ``(tid, ns)`` whose header follows."""

    tid: int
    ns: int
    text: str


@dataclass(frozen=True, slots=True)
class Lost:
    """bpftrace could not read ``count`` records: the kernel buffer was full."""

    count: int


@dataclass(frozen=True, slots=True)
class Emitted:
    """How many records the program printed in all (``@records`` at END)."""

    count: int


@dataclass(frozen=True, slots=True)
class IoTotals:
    """A flush of socket byte counts: ``(pid, start, fd, direction) -> (calls, bytes)``,
    from the maps of ``generation`` (0 or 1)."""

    totals: tuple[tuple[int, int, int, int, int, int], ...]
    generation: int = 0


@dataclass(frozen=True, slots=True)
class IoTimes:
    """The first (``last`` false) or last byte's record time of each socket flow in a
    flush of ``generation``: ``(pid, start, fd, direction) -> ns``."""

    generation: int
    last: bool
    times: tuple[tuple[int, int, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class Control:
    """Any other bpftrace message (``attached_probes`` ...), kept for the runner. bpftrace
    prints an empty line for an empty map; that is ``Control("blank", None)``."""

    type: str
    data: object


Line = Header | StringPart | Lost | IoTotals | IoTimes | Emitted | Control


class _Message(msgspec.Struct):
    type: str
    data: object = None


class _Stats(msgspec.Struct):
    count: int
    total: int


class _MapMessage(msgspec.Struct):
    type: str
    data: dict[str, dict[str, _Stats]]


class _TimesMessage(msgspec.Struct):
    type: str
    data: dict[str, dict[str, int]]


_message_decoder = msgspec.json.Decoder(_Message)
_map_decoder = msgspec.json.Decoder(_MapMessage)
_times_decoder = msgspec.json.Decoder(_TimesMessage)


def unescape(raw: bytes) -> str:
    """The exact string bpftrace escaped into ``raw`` (see the module docstring)."""
    if b"\\" in raw:
        raw = _ESCAPE.sub(_unescape_one, raw)
    return raw.decode("utf-8", "backslashreplace")


def _unescape_one(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if len(code) > 1:
        return bytes((int(code[-2:], 16),))
    simple = _SIMPLE_ESCAPES.get(code)
    if simple is None:
        raise ParseError(f"bad escape {match.group(0)!r}")
    return simple


def is_record(line: bytes) -> bool:
    """Whether ``line`` is one of the program's records (a ``printf``), parseable or not."""
    return line.startswith(_PRINTF_HEAD)


def parse_line(line: bytes, *, location: str = "") -> Line:
    """Parse one line of bpftrace's JSON output. Raises :class:`ParseError` on anything else."""
    if line.startswith(_PRINTF_HEAD) and line.endswith(_PRINTF_TAIL):
        return _parse_printf(line[len(_PRINTF_HEAD) : -len(_PRINTF_TAIL)], location)
    if not line.strip():
        return Control("blank", None)
    try:
        message = _message_decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"not a bpftrace JSON line: {exc}", location=location) from None
    if message.type == "lost_events":
        return Lost(_lost_count(message.data, location))
    if message.type in ("stats", "map") and _is_io_map(message.data):
        return _parse_totals(line, location)
    if message.type == "map" and _names_one_of(message.data, IO_FIRST_MAPS + IO_LAST_MAPS):
        return _parse_times(line, location)
    if message.type == "map" and isinstance(message.data, dict) and RECORDS_MAP in message.data:
        count = message.data[RECORDS_MAP]
        if not isinstance(count, int) or count < 0:
            raise ParseError(f"{RECORDS_MAP} is not a count", location=location)
        return Emitted(count)
    return Control(message.type, message.data)


def _is_io_map(data: object) -> bool:
    """Only our aggregation maps are data; bpftrace prints any other map it finds
    non-empty at exit (the program's scratch maps): those are :class:`Control`."""
    return _names_one_of(data, IO_MAPS)


def _names_one_of(data: object, names: tuple[str, ...]) -> bool:
    return isinstance(data, dict) and any(name in names for name in data)


def _parse_printf(body: bytes, location: str) -> Header | StringPart:
    kind = body[:1].decode("ascii", "replace")
    if kind == STRING_KIND:
        parts = body.split(_TAB, 3)
        if len(parts) != 4:
            raise ParseError("string line with too few fields", location=location)
        text = _text(parts[3], location)
        return StringPart(_int(parts[1], location), _int(parts[2], location), text)
    layout = LAYOUTS.get(kind)
    if layout is None:
        raise ParseError(f"unknown record kind {kind!r}", location=location)
    count = 1 + len(COMMON_FIELDS) + len(layout)
    parts = body.split(_TAB, count)
    if len(parts) != count + 1 or parts[0] != kind.encode():
        raise ParseError(f"{kind} record needs {count + 1} fields", location=location)
    try:
        numbers = tuple(map(int, parts[1:count]))
    except ValueError:
        raise ParseError(
            f"{kind} record with a field that is not a number", location=location
        ) from None
    ns, tid, pid, start = numbers[:4]
    return Header(kind, ns, tid, pid, start, numbers[4:], _text(parts[count], location))


def _text(raw: bytes, location: str) -> str:
    try:
        return unescape(raw)
    except ParseError as exc:
        raise ParseError(exc.message, location=location) from None


def _int(raw: bytes, location: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ParseError(f"not a number: {raw[:40]!r}", location=location) from None


def _lost_count(data: object, location: str) -> int:
    if isinstance(data, dict):
        count = data.get("events")
        if isinstance(count, int) and count >= 0:
            return count
    raise ParseError("lost_events without a count", location=location)


def _parse_totals(line: bytes, location: str) -> IoTotals:
    try:
        maps = _map_decoder.decode(line).data
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"bad aggregation map: {exc}", location=location) from None
    if len(maps) != 1 or not set(maps) <= set(IO_MAPS):
        raise ParseError(f"unexpected maps {sorted(maps)}", location=location)
    name, entries = next(iter(maps.items()))
    totals = tuple(
        (*_flow_key(key, location), stats.count, stats.total) for key, stats in entries.items()
    )
    return IoTotals(totals, IO_MAPS.index(name))


def _parse_times(line: bytes, location: str) -> IoTimes:
    try:
        maps = _times_decoder.decode(line).data
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"bad time map: {exc}", location=location) from None
    if len(maps) != 1 or not set(maps) <= set(IO_FIRST_MAPS + IO_LAST_MAPS):
        raise ParseError(f"unexpected maps {sorted(maps)}", location=location)
    name, entries = next(iter(maps.items()))
    times = tuple((*_flow_key(key, location), ns) for key, ns in entries.items())
    last = name in IO_LAST_MAPS
    generation = (IO_LAST_MAPS if last else IO_FIRST_MAPS).index(name)
    return IoTimes(generation, last, times)


def _flow_key(key: str, location: str) -> tuple[int, int, int, int]:
    fields = key.split(",")
    if len(fields) != 4:
        raise ParseError(f"bad aggregation key {key!r}", location=location)
    pid, start, fd, direction = (_int(field.encode(), location) for field in fields)
    return pid, start, fd, direction
