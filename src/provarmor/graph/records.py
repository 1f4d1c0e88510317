"""Graph records: nodes (processes, files, remote endpoints) and information-flow edges."""

from __future__ import annotations

from enum import StrEnum

import msgspec
from msgspec import Struct


class NodeKind(StrEnum):
    PROCESS = "process"
    FILE = "file"
    SOCKET = "socket"


class Node(Struct, kw_only=True, omit_defaults=True, gc=False):
    """One entity. Mutable only inside the builder (``last_ts``, labels after an exec)."""

    id: str
    kind: NodeKind
    host: str
    first_ts: int
    last_ts: int
    label: str = ""
    """What an analyst reads: the executable, the path, ``ip:port``."""
    pid: int = 0
    executable: str = ""
    command_line: str = ""
    user: str = ""
    parent: str = ""
    """Parent process entity id (processes)."""
    path: str = ""
    ip: str = ""
    port: int = 0
    exited: bool = False


class Edge(Struct, kw_only=True, omit_defaults=True, gc=False):
    """Information flowing from ``src`` to ``dst``: one event, or several merged by the
    causality-preserving reduction (then ``count`` > 1 and the times span them all)."""

    id: int
    src: str
    dst: str
    action: str
    first_ts: int
    last_ts: int
    count: int = 1
    first_event: str = ""
    last_event: str = ""
    incomplete: bool = False
    """The sensor lost events while this edge was open: it may be missing parts."""


def merge_node(old: Node, new: Node) -> Node:
    """What a graph store holds for a node written as ``old`` and then again as ``new``:
    the times widened, each descriptive field the newer one when known, ``exited`` once set
    stays set; identity fields (kind, host, path, address) stay ``old``'s."""
    return msgspec.structs.replace(
        old,
        first_ts=min(old.first_ts, new.first_ts),
        last_ts=max(old.last_ts, new.last_ts),
        label=new.label or old.label,
        pid=new.pid or old.pid,
        executable=new.executable or old.executable,
        command_line=new.command_line or old.command_line,
        user=new.user or old.user,
        parent=new.parent or old.parent,
        exited=old.exited or new.exited,
    )
