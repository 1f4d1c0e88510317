"""Factories for canonical events with sensible defaults, so a test reads like the behaviour
it checks: ``make_event(Action.WRITE, pid=10, path="/tmp/x", ts=5)``."""

from __future__ import annotations

import itertools

from provarmor.model.actions import Action
from provarmor.model.event import (
    Endpoint,
    Event,
    EventInfo,
    File,
    Host,
    Network,
    Process,
    ProcessRef,
)

_ids = itertools.count(1)


def entity(pid: int, host: str = "test-host") -> str:
    """The entity id the factories give process ``pid`` (start time 0) on ``host``."""
    return f"{host}-p{pid}"


def make_event(  # noqa: PLR0913  (a factory: every field is optional on purpose)
    action: Action,
    *,
    pid: int = 100,
    ts: int = 1,
    exe: str = "/usr/bin/bash",
    args: tuple[str, ...] = (),
    ppid: int | None = None,
    path: str | None = None,
    original_path: str = "",
    ip: str | None = None,
    port: int = 0,
    child_pid: int | None = None,
    host: str = "test-host",
    event_id: str | None = None,
    outcome: str = "success",
) -> Event:
    """Build one event. ``child_pid`` makes a fork whose new process is the target."""
    from provarmor.model.event import Target

    parent = ProcessRef(entity_id=entity(ppid, host), pid=ppid) if ppid is not None else None
    target = None
    if child_pid is not None:
        target = Target(process=ProcessRef(entity_id=entity(child_pid, host), pid=child_pid))
    destination = None
    network = None
    if ip is not None:
        destination = Endpoint(ip=ip, port=port)
        egress = action in (Action.CONNECT, Action.SEND)
        network = Network(transport="tcp", direction="egress" if egress else "ingress")
    return Event(
        timestamp=ts,
        event=EventInfo(
            action=action, id=event_id or f"ev-{next(_ids)}", outcome=outcome, dataset="test"
        ),
        host=Host(id=host),
        process=Process(
            entity_id=entity(pid, host),
            pid=pid,
            executable=exe,
            name=exe.rsplit("/", 1)[-1],
            args=args or (exe,),
            parent=parent,
        ),
        file=File(path=path, original_path=original_path) if path is not None else None,
        destination=destination,
        network=network,
        target=target,
    )
