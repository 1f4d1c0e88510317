"""The audit sensor as the agent runs it: :class:`AuditLiveSource` (kernel audit over
netlink), seeded with the processes already running, behind the
:class:`~provarmor.sources.base.LiveSensor` seam."""

from __future__ import annotations

from collections.abc import Iterator

from provarmor.model.event import Event, ProcessRef
from provarmor.sources.auditd.live import AuditLiveSource, ProcessSeed
from provarmor.sources.auditd.netlink import AuditUnavailable
from provarmor.sources.base import HostContext, SensorContext, SensorUnavailable
from provarmor.sources.procfs import iter_processes, read_clock, read_host_identity


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
        self._source = AuditLiveSource(
            host=HostContext(id=identity.id, name=identity.name, boot_id=identity.boot_id),
            seeds=seeds,
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
