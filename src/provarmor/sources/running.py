"""``running`` events: the processes already running when a live sensor starts.

A sensor sees the forks, execs, listens and accepts of what starts after it; for what was
already running it has only ``/proc`` (:mod:`provarmor.sources.procfs`,
:mod:`provarmor.sources.procnet`). Without more, the lineage context of a session, a cron
daemon or a web server that predates the agent is unknown, and so is that of everything
they start later. Both live sensors (eBPF and audit) therefore emit, right after they
seeded their process tables, one ``running`` event per process read there
(:data:`~provarmor.model.actions.Action.RUNNING`: a snapshot, not an act), ancestors
first, carrying what the lineage classifier needs: the process with its parent and
controlling terminal, a socket it listens on (``source``) and the peer of a connection it
accepted (``destination``). Downstream, only the lineage context and the graph's process
tree read them; the Sigma rules and the anomaly model never see them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from provarmor.model.actions import Action
from provarmor.model.event import Event, EventInfo, Host, Network, Process, ProcessRef, User
from provarmor.sources.procfs import HostIdentity, ProcessInfo
from provarmor.sources.procnet import ServerRole


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningProcess:
    """One process ``/proc`` showed at start, with its parent and its server roles."""

    info: ProcessInfo
    entity_id: str
    parent: ProcessRef | None
    roles: tuple[ServerRole, ...] = ()


def ancestors_first(
    processes: Iterable[ProcessInfo],
    host: HostIdentity,
    roles: Mapping[int, tuple[ServerRole, ...]] | None = None,
) -> list[RunningProcess]:
    """The processes, each after its parent (a parent that was not read goes unnamed, only
    its pid kept), with their entity ids and server roles."""
    by_pid = {info.pid: info for info in processes}
    children: dict[int, list[ProcessInfo]] = {}
    roots: list[ProcessInfo] = []
    for info in by_pid.values():
        if info.ppid in by_pid and info.ppid != info.pid:
            children.setdefault(info.ppid, []).append(info)
        else:
            roots.append(info)
    ordered: list[RunningProcess] = []
    waiting = sorted(roots, key=_start_order, reverse=True)
    entity: dict[int, str] = {}
    while waiting:
        info = waiting.pop()
        entity[info.pid] = info.entity_id(host)
        parent = by_pid.get(info.ppid)
        ref = None
        if parent is not None and parent.pid in entity:
            ref = ProcessRef(
                entity_id=entity[parent.pid],
                pid=parent.pid,
                executable=parent.executable,
                command_line=" ".join(parent.args),
            )
        elif info.ppid:
            ref = ProcessRef(entity_id="", pid=info.ppid)
        found = (roles or {}).get(info.pid, ())
        ordered.append(
            RunningProcess(info=info, entity_id=entity[info.pid], parent=ref, roles=found)
        )
        waiting += sorted(children.get(info.pid, ()), key=_start_order, reverse=True)
    return ordered


def _start_order(info: ProcessInfo) -> tuple[int, int]:
    return info.start, info.pid


class ProcessFields(Protocol):
    """What a sensor knows of a process (``/proc``'s :class:`ProcessInfo`, the eBPF
    decoder's table entry; read only)."""

    @property
    def pid(self) -> int: ...

    @property
    def start(self) -> int: ...

    @property
    def comm(self) -> str: ...

    @property
    def executable(self) -> str: ...

    @property
    def args(self) -> tuple[str, ...]: ...

    @property
    def cwd(self) -> str: ...

    @property
    def uid(self) -> int: ...

    @property
    def euid(self) -> int: ...

    @property
    def egid(self) -> int: ...

    @property
    def tty(self) -> str: ...

    @property
    def own(self) -> bool: ...


def canonical_process(
    fields: ProcessFields, *, entity_id: str, parent: ProcessRef | None = None
) -> Process:
    """The canonical process as the sensors render one: ids as users, the program's
    basename as its name."""
    return Process(
        entity_id=entity_id,
        pid=fields.pid,
        start=fields.start,
        executable=fields.executable,
        name=posixpath.basename(fields.executable) or fields.comm,
        args=fields.args,
        command_line=" ".join(fields.args),
        working_directory=fields.cwd,
        user=_user(fields.euid),
        real_user=_user(fields.uid),
        group=_user(fields.egid),
        parent=parent,
        tty=fields.tty,
        provarmor=fields.own,
    )


def running_process(running: RunningProcess) -> Process:
    """The canonical process of a process read from ``/proc``."""
    return canonical_process(running.info, entity_id=running.entity_id, parent=running.parent)


def running_event(  # noqa: PLR0913  (the sensor's own numbering and rendering of the event)
    running: RunningProcess,
    *,
    process: Process,
    host: Host,
    timestamp: int,
    event_id: str,
    sequence: int,
    dataset: str,
) -> Event:
    """The ``running`` event of one process (``process``: as the sensor renders it)."""
    listening = next((role for role in running.roles if role.listening is not None), None)
    accepted = next((role for role in running.roles if role.accepted is not None), None)
    chosen = accepted or listening
    network = None
    if chosen is not None:
        network = Network(
            transport=chosen.transport, direction="ingress" if accepted is not None else ""
        )
    return Event(
        timestamp=timestamp,
        event=EventInfo(action=Action.RUNNING, id=event_id, sequence=sequence, dataset=dataset),
        host=host,
        process=process,
        source=listening.listening if listening is not None else None,
        destination=accepted.accepted if accepted is not None else None,
        network=network,
        container=running.info.container,
    )


def _user(uid: int) -> User | None:
    return User(id=str(uid)) if uid >= 0 else None
