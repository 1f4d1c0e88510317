"""Stable identities for graph entities.

A process is never identified by its pid alone: pids are reused. Its ``entity_id`` is a
digest of host id, boot id, pid and start time, so the same process seen by two sensors (or
after an agent restart) gets the same id, and a recycled pid gets a new one.
"""

from __future__ import annotations

import hashlib
from base64 import urlsafe_b64encode


def process_entity_id(*, host_id: str, boot_id: str, pid: int, start: int) -> str:
    """The entity id of a process; ``start`` is its start time in ns (or clock ticks)."""
    digest = hashlib.blake2b(f"{host_id}|{boot_id}|{pid}|{start}".encode(), digest_size=12).digest()
    return urlsafe_b64encode(digest).decode("ascii")


def file_node_id(host_id: str, path: str) -> str:
    """Graph node id of a file: one node per path per host."""
    return f"file:{host_id}:{path}"


def socket_node_id(host_id: str, *, ip: str, port: int, address: str = "") -> str:
    """Graph node id of a remote endpoint. IP endpoints are global (they can link hosts);
    unix sockets and other addresses are per host."""
    if ip:
        return f"sock:{ip}:{port}"
    return f"sock:{host_id}:{address}"
