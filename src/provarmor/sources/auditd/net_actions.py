"""Handlers for socket syscalls: connect, accept, bind, listen, send, receive; ``socket``
itself only records the descriptor's transport.

``destination`` is always the remote peer and ``source`` the local end. The peer comes from
the SOCKADDR record when the call carried an address, else from what the descriptor table
learnt at connect or accept time.
"""

from __future__ import annotations

from provarmor.model.actions import Action
from provarmor.model.event import Endpoint, Event, Network
from provarmor.sources.auditd.context import SyscallContext
from provarmor.sources.auditd.process_table import SocketState
from provarmor.sources.auditd.sockaddr import AF_INET, AF_INET6, FAMILY_TRANSPORT, decode_sockaddr

EINPROGRESS = -115
_TYPE_TRANSPORT = {1: "tcp", 2: "udp", 3: "raw"}


def socket(ctx: SyscallContext) -> list[Event]:
    """socket: remember the new descriptor's transport; no event of its own."""
    if ctx.success and ctx.result >= 0:
        ctx.state.set_fd(ctx.result, SocketState(transport=transport(ctx.arg(0), ctx.arg(1))))
    return ctx.skip("socket_state")


def transport(family: int, sock_type: int) -> str:
    """``tcp``/``udp``/``raw`` for inet sockets, ``unix``/``netlink`` by family."""
    if family in (AF_INET, AF_INET6):
        return _TYPE_TRANSPORT.get(sock_type & 0xF, "")
    return FAMILY_TRANSPORT.get(family, "")


def connect(ctx: SyscallContext) -> list[Event]:
    """connect: egress to the SOCKADDR peer. A non-blocking connect still in progress
    (EINPROGRESS) has outcome ``unknown``: the connection usually completes."""
    sock = _socket(ctx, 0)
    peer = _sockaddr(ctx, sock)
    if peer is None:
        return ctx.skip("no_address")
    in_progress = not ctx.success and ctx.result == EINPROGRESS
    if ctx.success or in_progress:
        sock.remote = peer
    network = Network(transport=sock.transport, direction="egress")
    return [
        ctx.factory.event(
            ctx,
            Action.CONNECT,
            source=sock.local,
            destination=peer,
            network=network,
            outcome="unknown" if in_progress else "",
        )
    ]


def accept(ctx: SyscallContext) -> list[Event]:
    """accept/accept4: ingress from the peer; the new descriptor inherits the listener's
    local endpoint."""
    listener = _socket(ctx, 0)
    peer = _sockaddr(ctx, listener)
    if not listener.transport and peer is not None and peer.ip:
        listener.transport = "tcp"  # only connection-oriented sockets accept; SCTP is rare
    if ctx.success and ctx.result >= 0:
        conn = SocketState(transport=listener.transport, local=listener.local, remote=peer)
        ctx.state.set_fd(ctx.result, conn)
    if peer is None:
        return ctx.skip("no_peer")
    network = Network(transport=listener.transport, direction="ingress")
    return [
        ctx.factory.event(
            ctx, Action.ACCEPT, source=listener.local, destination=peer, network=network
        )
    ]


def bind(ctx: SyscallContext) -> list[Event]:
    """bind: ``source`` is the local address bound."""
    sock = _socket(ctx, 0)
    local = _sockaddr(ctx, sock)
    if local is None:
        return ctx.skip("no_address")
    if ctx.success:
        sock.local = local
    network = Network(transport=sock.transport)
    return [ctx.factory.event(ctx, Action.BIND, source=local, network=network)]


def listen(ctx: SyscallContext) -> list[Event]:
    """listen: ``source`` is the bound address when the descriptor table knows it."""
    sock = _socket(ctx, 0)
    network = Network(transport=sock.transport)
    return [ctx.factory.event(ctx, Action.LISTEN, source=sock.local, network=network)]


def send(ctx: SyscallContext) -> list[Event]:
    return _transfer(ctx, Action.SEND, direction="egress")


def recv(ctx: SyscallContext) -> list[Event]:
    return _transfer(ctx, Action.RECV, direction="ingress")


def _transfer(ctx: SyscallContext, action: Action, *, direction: str) -> list[Event]:
    sock = _socket(ctx, 0)
    peer = _sockaddr(ctx, sock) or sock.remote
    if peer is None:
        return ctx.skip("no_peer")
    size = ctx.result if ctx.success and ctx.result > 0 else 0
    network = Network(transport=sock.transport, direction=direction, bytes=size)
    return [ctx.factory.event(ctx, action, source=sock.local, destination=peer, network=network)]


def _socket(ctx: SyscallContext, fd_arg: int) -> SocketState:
    """The socket state of descriptor argument ``fd_arg``, created (unknown transport) when
    the table does not hold it as a socket."""
    fd = ctx.arg32(fd_arg)
    target = ctx.state.fds.get(fd)
    if isinstance(target, SocketState):
        return target
    sock = SocketState()
    if fd >= 0:
        ctx.state.set_fd(fd, sock)
    return sock


def _sockaddr(ctx: SyscallContext, sock: SocketState) -> Endpoint | None:
    record = ctx.first("SOCKADDR")
    if record is None or "saddr" not in record.fields:
        return None
    family, endpoint = decode_sockaddr(record.fields["saddr"], location=ctx.location)
    if not sock.transport:
        sock.transport = FAMILY_TRANSPORT.get(family, "")
    return endpoint
