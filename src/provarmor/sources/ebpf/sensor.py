"""The eBPF sensor as the agent runs it: :class:`EbpfSource` behind the
:class:`~provarmor.sources.base.LiveSensor` seam, its counters in the agent's terms."""

from __future__ import annotations

from collections.abc import Iterator

from provarmor.model.event import Event
from provarmor.sources.base import SensorContext, SensorUnavailable
from provarmor.sources.ebpf.kernel import EbpfUnavailable
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings


class EbpfSensor:
    name = "ebpf"

    def __init__(self, context: SensorContext) -> None:
        self._source = EbpfSource(
            EbpfSettings(
                exclude_pid=context.exclude_pids[0],
                exclude_pids=context.exclude_pids[1:],
                perf_rb_pages=context.ebpf_perf_rb_pages,
                reorder_ms=context.ebpf_reorder_ms,
                running_events=context.running_events,
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
            # socket flows stamped with their flush's time: their first byte's time was lost
            "untimed_flows": counters.untimed_flows,
            # a child re-parented before it ran, given back its real parent (and failures)
            "fork_parent_fixed": counters.fork_parent_fixed,
            "exec_parent_fixed": counters.exec_parent_fixed,
            "fork_parent_late": counters.fork_parent_late,
            "fork_parent_unconfirmed": counters.fork_parent_unconfirmed,
            "fork_parent_dropped": counters.fork_parent_dropped,
            "late_forks": counters.late_forks,
            # records from other CPUs' buffers put back in time order; too late for it; let
            # out early because too many waited
            "reordered": counters.reordered,
            "reorder_late": counters.reorder_late,
            "reorder_forced": counters.reorder_forced,
            # bpftrace output waiting to be decoded: now, and the most during this run
            "backlog_bytes": self._source.backlog_bytes,
            "backlog_peak_bytes": self._source.backlog_peak_bytes,
        }
