"""Which running processes serve the network, as ``/proc`` shows it when a sensor starts.

A process that listens for connections, or holds one it accepted, makes its children a
server's children (:mod:`provarmor.graph.lineage`); a live sensor sees that from its
``listen``/``accept`` records, but not for a server that was already running. This module
reads it once, at start, from the socket tables and the descriptors:

* the sockets: ``/proc/PID/net/{tcp,tcp6,udp,udp6}`` (the tables of that process's network
  namespace), read once per namespace (the first process found in it); a TCP socket in
  state ``LISTEN``, a UDP socket bound to a port outside the ephemeral range
  (``/proc/sys/net/ipv4/ip_local_port_range``) with no peer (a UDP server: DNS, syslog),
  and an established TCP socket whose local address is one a listener of the same namespace
  holds (an accepted connection: a client's end has an ephemeral port instead);
* who holds them: the ``socket:[INODE]`` links under ``/proc/PID/fd``, read only in
  namespaces that have such sockets, at most :data:`MAX_FDS_SCANNED` per process (listening
  sockets are opened first, so they have low numbers).

A process that vanished, or whose descriptors or namespace cannot be read (another user
namespace's init), is left out: it then just has no role. The parsers are pure (text in,
values out); :func:`read_server_roles` does the I/O.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from provarmor.model.event import Endpoint

MAX_FDS_SCANNED = 1024
"""Descriptors of one process looked at for sockets (the lowest ones)."""
_TABLE_FIELDS = 10
"""Fields of a table line up to the inode: sl local rem st queues tr retrnsmt uid timeout."""
_TCP_ESTABLISHED, _TCP_CLOSE, _TCP_LISTEN = 0x01, 0x07, 0x0A
_TABLES = (
    ("tcp", "tcp", False),
    ("tcp6", "tcp", True),
    ("udp", "udp", False),
    ("udp6", "udp", True),
)
_DEFAULT_EPHEMERAL = (32768, 60999)
_WILDCARDS = ("0.0.0.0", "::")  # noqa: S104  (matched, never bound)
_SOCKET_LINK = "socket:["


@dataclass(frozen=True, slots=True)
class SocketEntry:
    """One line of a ``/proc/net`` socket table."""

    transport: str
    local: Endpoint
    remote: Endpoint
    state: int
    inode: int


@dataclass(frozen=True, slots=True)
class ServerRole:
    """What a process does as a server: where it listens, whom it serves (either may be
    ``None``, never both)."""

    transport: str
    listening: Endpoint | None = None
    """A socket it listens on (TCP) or receives on as a server (UDP)."""
    accepted: Endpoint | None = None
    """The peer of a TCP connection it accepted."""


def parse_address(text: str, *, ipv6: bool) -> Endpoint:
    """``0100007F:1538`` -> 127.0.0.1 port 5432. The kernel prints each 32-bit word of the
    address in host byte order (little-endian here) and the port in hex."""
    address, _, port = text.partition(":")
    raw = bytes.fromhex(address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.IPv6Address(words) if ipv6 else ipaddress.IPv4Address(words)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return Endpoint(ip=str(ip), port=int(port, 16))


def parse_socket_table(text: str, *, transport: str, ipv6: bool) -> list[SocketEntry]:
    """The entries of ``/proc/net/tcp`` and its kin (the header line and malformed lines
    are skipped)."""
    entries: list[SocketEntry] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < _TABLE_FIELDS:
            continue
        try:
            entries.append(
                SocketEntry(
                    transport=transport,
                    local=parse_address(fields[1], ipv6=ipv6),
                    remote=parse_address(fields[2], ipv6=ipv6),
                    state=int(fields[3], 16),
                    inode=int(fields[9]),
                )
            )
        except ValueError:
            continue
    return entries


def parse_port_range(text: str) -> tuple[int, int]:
    """``ip_local_port_range`` (two numbers); the kernel's default when malformed."""
    parts = text.split()
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return _DEFAULT_EPHEMERAL


def server_sockets(
    entries: Iterable[SocketEntry], *, ephemeral: tuple[int, int] = _DEFAULT_EPHEMERAL
) -> dict[int, ServerRole]:
    """Socket inode -> its server role, for the sockets of one network namespace."""
    entries = list(entries)
    roles: dict[int, ServerRole] = {}
    listeners: set[tuple[str, int]] = set()
    for entry in entries:
        port = entry.local.port
        if entry.transport == "tcp" and entry.state == _TCP_LISTEN:
            listeners.add((entry.local.ip, port))
            roles[entry.inode] = ServerRole("tcp", listening=entry.local)
        elif (
            entry.transport == "udp"
            and entry.state == _TCP_CLOSE
            and entry.remote.port == 0
            and port
            and not ephemeral[0] <= port <= ephemeral[1]
        ):
            roles[entry.inode] = ServerRole("udp", listening=entry.local)
    for entry in entries:
        if entry.transport != "tcp" or entry.state != _TCP_ESTABLISHED or not entry.inode:
            continue
        port = entry.local.port
        if (entry.local.ip, port) in listeners or any((w, port) in listeners for w in _WILDCARDS):
            roles[entry.inode] = ServerRole("tcp", accepted=entry.remote)
    roles.pop(0, None)
    return roles


def read_server_roles(
    pids: Iterable[int], *, proc: Path = Path("/proc")
) -> dict[int, tuple[ServerRole, ...]]:
    """Pid -> the server roles of the sockets it holds (only pids that hold one)."""
    ephemeral = _read_ephemeral(proc)
    by_namespace: dict[str, dict[int, ServerRole]] = {}
    found: dict[int, tuple[ServerRole, ...]] = {}
    for pid in pids:
        base = proc / str(pid)
        try:
            namespace = os.readlink(base / "ns" / "net")
        except OSError:
            continue
        sockets = by_namespace.get(namespace)
        if sockets is None:
            sockets = by_namespace[namespace] = _namespace_sockets(base, ephemeral)
        if sockets:
            held = _held(base, sockets)
            if held:
                found[pid] = held
    return found


def _read_ephemeral(proc: Path) -> tuple[int, int]:
    try:
        return parse_port_range((proc / "sys/net/ipv4/ip_local_port_range").read_text())
    except OSError:
        return _DEFAULT_EPHEMERAL


def _namespace_sockets(base: Path, ephemeral: tuple[int, int]) -> dict[int, ServerRole]:
    entries: list[SocketEntry] = []
    for name, transport, ipv6 in _TABLES:
        try:
            text = (base / "net" / name).read_text()
        except OSError:
            continue
        entries += parse_socket_table(text, transport=transport, ipv6=ipv6)
    return server_sockets(entries, ephemeral=ephemeral)


def _held(base: Path, sockets: dict[int, ServerRole]) -> tuple[ServerRole, ...]:
    """The roles of the sockets among the process's first :data:`MAX_FDS_SCANNED` fds."""
    fd_dir = base / "fd"
    try:
        names = sorted(int(name) for name in os.listdir(fd_dir) if name.isdigit())
    except OSError:
        return ()
    held: list[ServerRole] = []
    for number in names[:MAX_FDS_SCANNED]:
        try:
            target = os.readlink(fd_dir / str(number))
        except OSError:
            continue
        if target.startswith(_SOCKET_LINK):
            role = sockets.get(int(target[len(_SOCKET_LINK) : -1]))
            if role is not None and role not in held:
                held.append(role)
    return tuple(held)
