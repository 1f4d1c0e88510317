"""Decode the ``saddr`` of a SOCKADDR record (a hex dump of a ``struct sockaddr``) into an
endpoint: IPv4 or IPv6 address and port, unix socket path, netlink port id.

Pure functions; a malformed address raises :class:`ParseError`.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from provarmor.model.errors import ParseError
from provarmor.model.event import Endpoint

AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16

FAMILY_TRANSPORT: dict[int, str] = {AF_UNIX: "unix", AF_NETLINK: "netlink"}
"""Transport implied by the address family alone (inet sockets need the socket type)."""


def decode_sockaddr(saddr: str, *, location: str = "") -> tuple[int, Endpoint]:
    """``saddr`` hex -> (address family, endpoint)."""
    try:
        data = bytes.fromhex(saddr)
    except ValueError:
        raise ParseError(f"saddr is not hex: {saddr[:40]!r}", location=location) from None
    if len(data) < 2:
        raise ParseError("saddr shorter than its family", location=location)
    family = data[0] | data[1] << 8
    if family == AF_INET and len(data) >= 8:
        ip = f"{data[4]}.{data[5]}.{data[6]}.{data[7]}"
        return family, Endpoint(ip=ip, port=data[2] << 8 | data[3])
    if family == AF_INET6 and len(data) >= 24:
        return family, Endpoint(ip=_ipv6(data[8:24]), port=data[2] << 8 | data[3])
    if family == AF_UNIX:
        return family, Endpoint(address=_unix_path(data[2:]))
    if family == AF_NETLINK and len(data) >= 8:
        port_id = int.from_bytes(data[4:8], "little")
        return family, Endpoint(address=f"netlink:{port_id}")
    return family, Endpoint(address=f"family{family}:{data[2:].hex()}")


def _ipv6(raw: bytes) -> str:
    address = IPv6Address(raw)
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else address.compressed


def _unix_path(raw: bytes) -> str:
    if not raw:
        return ""
    if raw[0] == 0:  # abstract namespace: the name is every byte after the NUL
        return "@" + raw[1:].rstrip(b"\0").decode("utf-8", "backslashreplace")
    return raw.partition(b"\0")[0].decode("utf-8", "backslashreplace")
