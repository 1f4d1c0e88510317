"""The process table as ``/proc`` shows it now: what a live sensor knows before its first event.

A sensor started on a running host sees events from processes that began before it did; this
module seeds its table with them (pid, parent, start time, program, argv, cwd, ids, container,
controlling terminal) and says who the host is (``/etc/machine-id``,
``/proc/sys/kernel/random/boot_id``).

Start times. ``/proc/PID/stat`` field 22 is the process's ``start_boottime`` in clock ticks
(``CLK_TCK``, rounded down); :class:`ProcClock` turns ticks into ns since the epoch as
``btime * 1e9 + ticks * (1e9 / CLK_TCK)`` with ``btime`` from ``/proc/stat``. The eBPF sensor
reads ``start_boottime`` in ns and rounds it down to ticks first
(:meth:`ProcClock.start_from_boottime_ns`), so both give the SAME start for a process and
therefore the same ``process.entity_id``. ``btime`` is read once per run and shared: it moves
when the wall clock is stepped, and two readings must not disagree.

The parsers are pure (text in, value out, :class:`ParseError` for a malformed file); the
``read_*`` functions do the I/O and treat a process that vanished meanwhile as absent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provarmor.model.errors import ParseError
from provarmor.model.event import Container
from provarmor.model.ids import process_entity_id
from provarmor.model.time_units import NS_PER_SECOND
from provarmor.sources.owngroup import cgroup_v2_path, in_own_group

PF_KTHREAD = 0x00200000
"""``task->flags`` bit of kernel threads (``/proc/PID/stat`` field 9)."""
_PTS_FIRST_MAJOR, _PTS_LAST_MAJOR = 136, 143
_TTY_MAJOR, _SERIAL_FIRST_MINOR = 4, 64
_CONSOLE = (5, 1)
_STAT_FIELDS_AFTER_COMM = 20
"""``/proc/PID/stat`` fields after ``(comm)`` that we need: up to field 22, starttime."""

_CONTAINER_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"docker-([0-9a-f]{64})\.scope"), "docker"),
    (re.compile(r"/docker/([0-9a-f]{64})(?:/|$)"), "docker"),
    (re.compile(r"cri-containerd-([0-9a-f]{64})\.scope"), "containerd"),
    (re.compile(r"crio-(?:conmon-)?([0-9a-f]{64})(?:\.scope)?"), "cri-o"),
    (re.compile(r"libpod-(?:conmon-)?([0-9a-f]{64})(?:\.scope)?"), "podman"),
    (re.compile(r"/kubepods[^\n]*/([0-9a-f]{64})(?:/|$)"), "containerd"),
    (re.compile(r"/containerd/([0-9a-f]{64})(?:/|$)"), "containerd"),
    (re.compile(r"systemd-nspawn@([^/\n]+)\.service"), "systemd-nspawn"),
    (re.compile(r"/machine\.slice/machine-([^/\n]+)\.scope"), "systemd-nspawn"),
)
"""Ordered: the first pattern found in any cgroup line wins."""


@dataclass(frozen=True, slots=True)
class ProcClock:
    """Converts kernel start times into ns since the epoch, the way ``/proc`` rounds them."""

    btime: int
    """Boot time, seconds since the epoch (``btime`` in ``/proc/stat``)."""
    clk_tck: int = 100

    @property
    def ns_per_tick(self) -> int:
        return NS_PER_SECOND // self.clk_tck

    def start_from_ticks(self, ticks: int) -> int:
        """Start time (ns since the epoch) from ``/proc/PID/stat`` starttime ticks."""
        return self.btime * NS_PER_SECOND + ticks * self.ns_per_tick

    def start_from_boottime_ns(self, boottime_ns: int) -> int:
        """Start time from ``task->start_boottime`` (ns since boot), rounded down to a tick
        exactly as the kernel does for ``/proc/PID/stat``."""
        return self.start_from_ticks(boottime_ns // self.ns_per_tick)


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """Who the host is: stable id, boot id and name."""

    id: str
    boot_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class StatFields:
    """What we use from ``/proc/PID/stat``."""

    pid: int
    comm: str
    ppid: int
    flags: int
    start_ticks: int
    tty_nr: int = 0
    """The controlling terminal's device number (0: none)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessInfo:
    """One process as ``/proc`` shows it."""

    pid: int
    ppid: int
    start: int
    """ns since the epoch (see :class:`ProcClock`)."""
    start_ticks: int
    comm: str
    executable: str = ""
    args: tuple[str, ...] = ()
    cwd: str = ""
    uid: int = -1
    euid: int = -1
    gid: int = -1
    egid: int = -1
    container: Container | None = None
    own: bool = False
    """In ProvArmor's own cgroup (:mod:`provarmor.sources.owngroup`)."""
    cgroup: str = ""
    """Its cgroup v2 path ('' without cgroup v2)."""
    tty: str = ""
    """Its controlling terminal as the kernel names it (``pts0``; :func:`tty_name`), or ''."""

    def entity_id(self, host: HostIdentity) -> str:
        return process_entity_id(
            host_id=host.id, boot_id=host.boot_id, pid=self.pid, start=self.start
        )


# -- pure parsers ---------------------------------------------------------------------------


def parse_stat(text: str, *, location: str = "stat") -> StatFields:
    """Parse ``/proc/PID/stat``. ``comm`` may hold spaces and parentheses: it runs from the
    first ``(`` to the LAST ``)``."""
    open_paren = text.find("(")
    close_paren = text.rfind(")")
    if open_paren < 1 or close_paren < open_paren:
        raise ParseError("no (comm) in stat", location=location)
    rest = text[close_paren + 1 :].split()
    if len(rest) < _STAT_FIELDS_AFTER_COMM:
        raise ParseError(f"stat has {len(rest)} fields after comm", location=location)
    try:
        return StatFields(
            pid=int(text[:open_paren]),
            comm=text[open_paren + 1 : close_paren],
            ppid=int(rest[1]),
            flags=int(rest[6]),
            start_ticks=int(rest[19]),
            tty_nr=int(rest[4]),
        )
    except ValueError as exc:
        raise ParseError(f"bad number in stat: {exc}", location=location) from None


def tty_name(tty_nr: int) -> str:
    """The kernel's name of a terminal (``tty->name``, what the eBPF sensor's ``I`` record and
    audit's ``tty=`` show) from ``/proc/PID/stat``'s ``tty_nr``: ``pts0`` for Unix98 pty
    slaves (majors 136-143), ``tty1``/``ttyS0`` for virtual consoles and serial ports
    (major 4), ``console``; another terminal as ``tty<major>:<minor>`` ('' for none).
    (Device numbers from the kernel's Documentation/admin-guide/devices.txt.)"""
    if tty_nr == 0:
        return ""
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if _PTS_FIRST_MAJOR <= major <= _PTS_LAST_MAJOR:
        return f"pts{(major - _PTS_FIRST_MAJOR) * 256 + minor}"
    if major == _TTY_MAJOR:
        return (
            f"tty{minor}" if minor < _SERIAL_FIRST_MINOR else f"ttyS{minor - _SERIAL_FIRST_MINOR}"
        )
    if (major, minor) == _CONSOLE:
        return "console"
    return f"tty{major}:{minor}"


def parse_status_ids(text: str, *, location: str = "status") -> tuple[int, int, int, int]:
    """``(uid, euid, gid, egid)`` from ``/proc/PID/status``."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid"):
            found[key] = value.split()
    try:
        uids, gids = found["Uid"], found["Gid"]
        return int(uids[0]), int(uids[1]), int(gids[0]), int(gids[1])
    except (KeyError, IndexError, ValueError):
        raise ParseError("no numeric Uid:/Gid: lines in status", location=location) from None


def parse_cmdline(data: bytes) -> tuple[str, ...]:
    """argv from ``/proc/PID/cmdline`` (NUL-separated). Bytes that are not UTF-8 are kept as
    ``\\xNN`` escapes, the same rendering the eBPF decoder uses."""
    if not data:
        return ()
    parts = data.split(b"\0")
    if parts[-1] == b"":
        parts.pop()
    return tuple(part.decode("utf-8", "backslashreplace") for part in parts)


def parse_cgroup(text: str) -> Container | None:
    """The container a process runs in, from ``/proc/PID/cgroup``; ``None`` on the host.

    Recognises docker, containerd (plain and Kubernetes), CRI-O, podman and systemd-nspawn
    cgroup paths, in both cgroup v1 and v2 layouts.
    """
    for pattern, runtime in _CONTAINER_PATTERNS:
        match = pattern.search(text)
        if match:
            return Container(id=match.group(1), runtime=runtime)
    return None


def parse_btime(text: str, *, location: str = "/proc/stat") -> int:
    """Boot time (seconds since the epoch) from ``/proc/stat``."""
    for line in text.splitlines():
        if line.startswith("btime "):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                break
    raise ParseError("no btime line", location=location)


# -- reading the live system ----------------------------------------------------------------


def read_clock(proc: Path = Path("/proc")) -> ProcClock:
    """The clock of this boot (``btime``) and ``CLK_TCK``."""
    btime = parse_btime((proc / "stat").read_text(), location=str(proc / "stat"))
    return ProcClock(btime=btime, clk_tck=os.sysconf("SC_CLK_TCK"))


def read_host_identity(
    proc: Path = Path("/proc"), machine_id: Path = Path("/etc/machine-id")
) -> HostIdentity:
    """Host id from ``/etc/machine-id`` (falling back to the D-Bus copy), boot id, name."""
    host_id = ""
    for candidate in (machine_id, Path("/var/lib/dbus/machine-id")):
        try:
            host_id = candidate.read_text().strip()
        except OSError:
            continue
        if host_id:
            break
    boot_id = (proc / "sys/kernel/random/boot_id").read_text().strip()
    return HostIdentity(id=host_id or boot_id, boot_id=boot_id, name=os.uname().nodename)


def read_process(pid: int, *, clock: ProcClock, proc: Path = Path("/proc")) -> ProcessInfo | None:
    """One process, or ``None`` if it is gone or is a kernel thread."""
    base = proc / str(pid)
    try:
        stat = parse_stat((base / "stat").read_text(), location=str(base / "stat"))
        if stat.flags & PF_KTHREAD:
            return None
        ids = parse_status_ids((base / "status").read_text(), location=str(base / "status"))
        args = parse_cmdline((base / "cmdline").read_bytes())
        cgroups = (base / "cgroup").read_text()
        container = parse_cgroup(cgroups)
    except (OSError, ParseError):
        return None
    return ProcessInfo(
        pid=stat.pid,
        ppid=stat.ppid,
        start=clock.start_from_ticks(stat.start_ticks),
        start_ticks=stat.start_ticks,
        comm=stat.comm,
        executable=_read_link(base / "exe"),
        args=args,
        cwd=_read_link(base / "cwd"),
        uid=ids[0],
        euid=ids[1],
        gid=ids[2],
        egid=ids[3],
        container=container,
        own=in_own_group(cgroups),
        cgroup=cgroup_v2_path(cgroups),
        tty=tty_name(stat.tty_nr),
    )


def iter_processes(*, clock: ProcClock, proc: Path = Path("/proc")) -> Iterator[ProcessInfo]:
    """Every user-space process now alive (kernel threads and vanished ones left out)."""
    for entry in proc.iterdir():
        if entry.name.isdigit():
            info = read_process(int(entry.name), clock=clock, proc=proc)
            if info is not None:
                yield info


def _read_link(path: Path) -> str:
    """A ``/proc`` symlink's target (`` (deleted)`` kept: it matters to an investigator);
    ``""`` when unreadable (permissions, a zombie)."""
    try:
        return os.readlink(path)
    except OSError:
        return ""
