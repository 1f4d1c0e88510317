"""The audit sensor as the agent runs it: :class:`AuditLiveSource` (kernel audit over
netlink), seeded with the processes already running (which it first reports as ``running``
events: :mod:`provarmor.sources.running`), behind the
:class:`~provarmor.sources.base.LiveSensor` seam."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from provarmor.model.event import Event, Host, ProcessRef
from provarmor.sources.auditd.live import DATASET, AuditLiveSource, ProcessSeed
from provarmor.sources.auditd.netlink import AuditUnavailable
from provarmor.sources.base import HostContext, SensorContext, SensorUnavailable
from provarmor.sources.procfs import iter_processes, read_clock, read_host_identity
from provarmor.sources.procnet import read_server_roles
from provarmor.sources.running import ancestors_first, running_event, running_process


class AuditSensor:
    name = "audit"

    def __init__(self, context: SensorContext) -> None:
        identity = read_host_identity()
        clock = read_clock()
        running = {info.pid: info for info in iter_processes(clock=clock)}
        entity = {pid: info.entity_id(identity) for pid, info in running.items()}
        seeds = [
            ProcessSeed(
                pid=info.pid,
                entity_id=entity[info.pid],
                start=info.start,
                executable=info.executable,
                args=info.args,
                parent=(
                    ProcessRef(entity_id=entity[info.ppid], pid=info.ppid)
                    if info.ppid in entity
                    else None
                ),
                own=info.own,
            )
            for info in running.values()
        ]
        host = HostContext(id=identity.id, name=identity.name, boot_id=identity.boot_id)
        events: list[Event] = []
        if context.running_events:
            now = time.time_ns()
            roles = read_server_roles(running)
            event_host = Host(id=identity.id, name=identity.name, boot_id=identity.boot_id)
            ordered = ancestors_first(running.values(), identity, roles)
            untraced = {os.getpid(), *context.exclude_pids}
            for number, process in enumerate(ordered):
                if process.info.pid in untraced:
                    continue
                events.append(
                    running_event(
                        process,
                        process=running_process(process),
                        host=event_host,
                        timestamp=now,
                        event_id=f"{identity.id}:running:{now:x}:{number}",
                        sequence=0,
                        dataset=DATASET,
                    )
                )
        self._source = AuditLiveSource(
            host=host,
            seeds=seeds,
            running=events,
            exclude_pids=context.exclude_pids,
            backlog_limit=context.audit_backlog_limit,
            tap=context.raw,
        )

    def start(self) -> None:
        try:
            self._source.start()
        except AuditUnavailable as exc:
            raise SensorUnavailable(f"audit sensor unavailable: {exc}") from None

    def events(self) -> Iterator[Event]:
        return self._source.events()

    def stop(self) -> None:
        self._source.stop()

    def kernel_counters(self) -> dict[str, int]:
        counters = self._source.counters
        return {
            "events": counters.events,
            "lost": counters.kernel_lost,
            "parse_errors": counters.parse_errors,
            "overruns": counters.overruns,
            "backlog": counters.backlog,
        }
