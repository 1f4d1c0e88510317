"""Socket endpoints from sysdig's text: ``fd.name`` tuples, ``addr=`` and ``fd=N(<4t>...)``.

Sysdig writes a connected socket's ``fd.name`` as ``client_ip:port->server_ip:port``
whichever side the process is on. Which end is remote therefore depends on the process's
role: the server end is local for a process that accepted on (or bound) that port.
"""

from __future__ import annotations

import ipaddress
import re

from provarmor.model.event import Endpoint
from provarmor.sources.sysdig.fields import SysdigRecord, to_int

_FD_KIND = re.compile(r"^-?\d+\(<(\w)(\w?)>")
_TRANSPORTS = {"t": "tcp", "u": "udp"}


def endpoint(text: str) -> Endpoint | None:
    """``1.2.3.4:80``, ``::1:8080`` or ``[::1]:8080`` -> ip and port; anything else -> address."""
    text = text.strip()
    if not text or text == "NULL":
        return None
    host, _, port_text = text.rpartition(":")
    port = to_int(port_text) if port_text.isdigit() else None
    if host and port is not None and 0 <= port <= 65535:
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return Endpoint(address=text)
        return Endpoint(ip=host, port=port)
    return Endpoint(address=text)


def socket_tuple(record: SysdigRecord) -> tuple[Endpoint, Endpoint] | None:
    """(client, server) of the socket the record used, from ``fd.name`` or ``tuple=``."""
    for text in (record.text("fd.name"), record.args.get("tuple", "")):
        if "->" in text:
            client_text, _, server_text = text.partition("->")
            client, server = endpoint(client_text), endpoint(server_text)
            if client is not None and server is not None:
                return client, server
    return None


def fd_kind(record: SysdigRecord) -> str:
    """``f`` file, ``d`` directory, ``4``/``6`` IP socket, ``u`` unix socket, ``p`` pipe ..."""
    kind = record.text("fd.typechar")
    if kind:
        return kind[:1]
    match = _FD_KIND.match(record.args.get("fd", ""))
    if match:
        return match[1]
    name = record.text("fd.name")
    if "->" in name:
        return "4"
    if name.startswith("pipe:"):
        return "p"
    return "f" if name.startswith("/") else ""


def transport(record: SysdigRecord) -> str:
    """``tcp``/``udp`` from ``fd.l4proto`` or the ``<4t>`` marker, ``unix`` for unix sockets."""
    proto = record.text("fd.l4proto").lower()
    if proto in ("tcp", "udp"):
        return proto
    if fd_kind(record) == "u":
        return "unix"
    for key in ("fd", "sockfd"):
        match = _FD_KIND.match(record.args.get(key, ""))
        if match:
            return _TRANSPORTS.get(match[2], "")
    return ""
