"""The endpoints and direction of a sysdig network record (connect, accept, bind, listen,
send, recv, and read/write on sockets), from the acting process's point of view.

``destination`` is always the remote peer and ``source`` the local end; ``bind`` and
``listen`` set ``source`` only. A socket's role comes from the process: a tuple whose server
port the process bound, listened or accepted on is a server-side socket.
"""

from __future__ import annotations

from provarmor.model.actions import Action
from provarmor.model.event import Endpoint, Network
from provarmor.sources.sysdig.fields import SysdigRecord, to_int
from provarmor.sources.sysdig.processes import ProcessState
from provarmor.sources.sysdig.sockets import endpoint, fd_kind, socket_tuple, transport

Endpoints = tuple[Endpoint | None, Endpoint | None, Network]
_EGRESS = frozenset({Action.CONNECT, Action.SEND})
_LOCAL_ONLY = frozenset({Action.BIND, Action.LISTEN})


def network_parts(record: SysdigRecord, state: ProcessState, action: Action) -> Endpoints | str:
    """``(source, destination, network)`` for the event, or the reason to skip it."""
    if action in _LOCAL_ONLY:
        local = _local_address(record)
        if local is None:
            return "bind_without_address"
        if local.port:
            state.server_ports.add(local.port)
        return local, None, Network(transport=transport(record))
    pair = _peers(record, state, action)
    if isinstance(pair, str):
        return pair
    local, remote = pair
    size = to_int(record.args.get("res", "")) if action in (Action.SEND, Action.RECV) else None
    network = Network(
        transport=transport(record),
        direction="egress" if action in _EGRESS else "ingress",
        bytes=size if size is not None and 0 < size < 2**62 else 0,
    )
    return local, remote, network


def _peers(
    record: SysdigRecord, state: ProcessState, action: Action
) -> tuple[Endpoint | None, Endpoint] | str:
    if fd_kind(record) == "u":
        name = record.text("fd.name") or record.args.get("addr", "")
        return (None, Endpoint(address=name)) if name else "unix_socket_without_path"
    pair = socket_tuple(record)
    if pair is not None:
        client, server = pair
        server_side = action is Action.ACCEPT or (server.port in state.server_ports)
        if action is Action.ACCEPT and server.port:
            state.server_ports.add(server.port)
        return (server, client) if server_side else (client, server)
    remote = endpoint(record.args.get("addr", ""))
    if remote is None:
        return "network_without_peer"
    return None, remote


def _local_address(record: SysdigRecord) -> Endpoint | None:
    for text in (record.args.get("addr", ""), record.text("fd.name")):
        found = endpoint(text) if "->" not in text else None
        if found is not None:
            return found
    return None
