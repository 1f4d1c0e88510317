"""A logged line and its meaning, as one canonical event.

The logging program is the event's process (``name``, ``pid``). Its entity id is made from
host, boot (when the journal names it), pid and a start time of 0: the log does not say
when the program started, so this is not the id a kernel sensor gives the same process
(joining the two by pid and time is the graph's work, not the importer's).
"""

from __future__ import annotations

import zlib

from provarmor.model.event import (
    Account,
    Authentication,
    Endpoint,
    Event,
    EventInfo,
    Host,
    LogRef,
    Process,
    ProcessRef,
    Target,
    User,
)
from provarmor.model.ids import process_entity_id
from provarmor.sources.hostlog.lines import LogLine
from provarmor.sources.hostlog.messages import LogFact, parse_message


def _account(fact: LogFact) -> Account | None:
    target = None
    if fact.target_user or fact.target_user_id:
        target = User(id=fact.target_user_id, name=fact.target_user)
    if not (fact.user or fact.user_id or target):
        return None
    return Account(name=fact.user, id=fact.user_id, target=target)


def _target(fact: LogFact) -> Target | None:
    if not fact.command:
        return None
    executable = fact.command.split(" ", 1)[0]
    return Target(
        process=ProcessRef(
            entity_id="", pid=fact.command_pid, executable=executable, command_line=fact.command
        )
    )


def event_id(line: LogLine, *, dataset: str, occurrence: int) -> str:
    """``dataset:time:checksum`` of the text, ``:N`` for the N-th (from 1) same line at the
    same time: the same line read again gets the same id, wherever it sits in the file."""
    base = f"{dataset}:{line.timestamp}:{zlib.crc32(line.message.encode()):08x}"
    return f"{base}:{occurrence}" if occurrence else base


class EventIds:
    """Occurrence numbers for :func:`event_id`: how often each id was given at the current
    time (only: logs run in time order, so the table stays as small as one instant)."""

    def __init__(self) -> None:
        self._time: int | None = None
        self._given: dict[str, int] = {}

    def occurrence(self, line: LogLine, *, dataset: str) -> int:
        if line.timestamp != self._time:
            self._given.clear()
            self._time = line.timestamp
        base = event_id(line, dataset=dataset, occurrence=0)
        seen = self._given.get(base, 0)
        self._given[base] = seen + 1
        return seen


def build_event(
    line: LogLine, *, host: Host, log: LogRef, dataset: str, occurrence: int = 0
) -> Event:
    """The canonical event of ``line`` (``host.name`` from the line when it names one);
    ``occurrence`` tells apart identical lines at the same time (see :func:`event_id`)."""
    fact = parse_message(line.program, line.message)
    boot_id = line.boot_id or host.boot_id
    if (line.hostname and line.hostname != host.name) or boot_id != host.boot_id:
        host = Host(id=host.id, name=line.hostname or host.name, boot_id=boot_id)
    process = Process(
        entity_id=process_entity_id(host_id=host.id, boot_id=boot_id, pid=line.pid, start=0),
        pid=line.pid,
        name=line.program,
    )
    source = None
    if fact.source_ip:
        source = Endpoint(ip=fact.source_ip, port=fact.source_port)
    authentication = None
    if fact.method or fact.service:
        authentication = Authentication(method=fact.method, service=fact.service)
    return Event(
        timestamp=line.timestamp,
        event=EventInfo(
            action=fact.action,
            id=event_id(line, dataset=dataset, occurrence=occurrence),
            outcome=fact.outcome,
            reason=fact.reason,
            dataset=dataset,
            count=fact.count,
        ),
        host=host,
        process=process,
        source=source,
        target=_target(fact),
        user=_account(fact),
        authentication=authentication,
        message=line.message,
        log=log,
    )
