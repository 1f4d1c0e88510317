"""The agent's sensors: a sensor starts, yields live events until stopped, and reports what
the kernel lost. One adapter per backend, registered in :data:`SENSORS`; ``auto`` picks the
first whose prerequisites hold. The host log source (journald or a syslog file) runs beside
it when the settings ask for one (:mod:`provarmor.agent.host_logs`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from provarmor.agent.host_logs import WithHostLogs, start_host_logs
from provarmor.agent.settings import AgentSettings, SensorChoice
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event, ProcessRef
from provarmor.sources.auditd.live import AuditLiveSource, ProcessSeed
from provarmor.sources.auditd.netlink import AuditUnavailable
from provarmor.sources.base import HostContext
from provarmor.sources.ebpf.kernel import EbpfUnavailable
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.procfs import iter_processes, read_clock, read_host_identity


class SensorUnavailable(ConfigError):
    """This host cannot run the sensor (the message says what is missing)."""


class LiveSensor(Protocol):
    name: str

    def start(self) -> None:
        """Begin collecting; raise :class:`SensorUnavailable` naming what is missing."""

    def events(self) -> Iterator[Event]:
        """Events as they arrive; ends after :meth:`stop` once everything is drained."""

    def stop(self) -> None: ...

    def kernel_counters(self) -> dict[str, int]:
        """``events``, ``lost`` (kernel-side), ``parse_errors`` and backend-specific counts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorContext:
    settings: AgentSettings
    exclude_pids: tuple[int, ...]
    raw: Callable[[bytes], None] | None = None
    """Sees every raw sensor record (one line, no newline) before it is decoded."""


class EbpfSensor:
    name = "ebpf"

    def __init__(self, context: SensorContext) -> None:
        self._source = EbpfSource(
            EbpfSettings(
                exclude_pid=context.exclude_pids[0],
                exclude_pids=context.exclude_pids[1:],
                perf_rb_pages=context.settings.ebpf_perf_rb_pages,
            ),
            tap=context.raw,
        )

    def start(self) -> None:
        try:
            self._source.start()
        except EbpfUnavailable as exc:
            raise SensorUnavailable(f"eBPF sensor unavailable: {exc}") from None

    def events(self) -> Iterator[Event]:
        return self._source.events()

    def stop(self) -> None:
        self._source.stop()

    def kernel_counters(self) -> dict[str, int]:
        counters = self._source.counters
        return {
            "events": counters.events,
            "lost": counters.lost + counters.unreported,
            "parse_errors": counters.parse_errors,
            "incomplete": counters.incomplete,
            "gaps": counters.gaps,
            # a child re-parented before it ran, given back its real parent (and failures)
            "fork_parent_fixed": counters.fork_parent_fixed,
            "exec_parent_fixed": counters.exec_parent_fixed,
            "fork_parent_late": counters.fork_parent_late,
            "fork_parent_unconfirmed": counters.fork_parent_unconfirmed,
            "fork_parent_dropped": counters.fork_parent_dropped,
            "late_forks": counters.late_forks,
            # bpftrace output waiting to be decoded: now, and the most during this run
            "backlog_bytes": self._source.backlog_bytes,
            "backlog_peak_bytes": self._source.backlog_peak_bytes,
        }


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
            )
            for info in running.values()
        ]
        self._source = AuditLiveSource(
            host=HostContext(id=identity.id, name=identity.name, boot_id=identity.boot_id),
            seeds=seeds,
            exclude_pids=context.exclude_pids,
            backlog_limit=context.settings.audit_backlog_limit,
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


SENSORS: dict[str, Callable[[SensorContext], LiveSensor]] = {
    "ebpf": EbpfSensor,
    "audit": AuditSensor,
}
"""Backends in the order ``auto`` tries them."""


def start_sensor(context: SensorContext) -> LiveSensor:
    """Start the chosen sensor; for ``auto`` the first that starts (the reasons the others
    could not are in the error when none can)."""
    choice = context.settings.sensor
    names = list(SENSORS) if choice is SensorChoice.AUTO else [choice.value]
    if os.geteuid() != 0:
        raise SensorUnavailable("the agent needs root (it reads the kernel's events)")
    reasons = []
    for name in names:
        factory = SENSORS.get(name)
        if factory is None:
            reasons.append(f"{name}: not built into this agent")
            continue
        sensor = factory(context)
        try:
            sensor.start()
        except SensorUnavailable as exc:
            reasons.append(str(exc))
            continue
        return _with_host_logs(sensor, context.settings)
    raise SensorUnavailable("no sensor could start: " + "; ".join(reasons))


def _with_host_logs(sensor: LiveSensor, settings: AgentSettings) -> LiveSensor:
    identity = read_host_identity()
    host = HostContext(id=identity.id, name=identity.name, boot_id=identity.boot_id)
    try:
        logs = start_host_logs(settings, host=host)
    except ConfigError:
        sensor.stop()
        raise
    if logs is None:
        return sensor
    combined = WithHostLogs(sensor, logs)
    combined.start()
    return combined
