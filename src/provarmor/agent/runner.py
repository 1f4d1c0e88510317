"""The agent's run: sensor -> bounded queue -> spool -> sinks, with counters and status.

Threads: the sensor's own readers feed :meth:`LiveSensor.events`; one agent thread moves
those events into a :class:`BoundedQueue` (a full queue drops and counts, never blocks the
sensor); the main loop appends queued events to the spool (durable first), then lets each
sink consume the spool and acknowledges what the sink committed. Every loss (kernel, queue,
spool eviction) ends up as a ``gap`` event in the stream and in the status counters.

Startup and teardown are lists read top to bottom (:data:`STARTUP`, :data:`TEARDOWN`).
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from provarmor.agent.delivery import Delivery
from provarmor.agent.sensors import start_sensors
from provarmor.agent.settings import AgentSettings
from provarmor.agent.sinks import GraphSink, NdjsonSink, Sink
from provarmor.agent.spool import Spool
from provarmor.agent.status import AgentStatus, blindness, rates, write_status
from provarmor.model.alert import Alert
from provarmor.model.errors import StorageError
from provarmor.model.event import Event
from provarmor.outputs.base import Output
from provarmor.outputs.files import AlertFile
from provarmor.pipeline.config import AnalysisConfig
from provarmor.pipeline.queues import BoundedQueue, events_with_gap
from provarmor.sources.base import LiveSensor, SensorContext
from provarmor.sources.procfs import read_host_identity
from provarmor.storage.private import private_dir

if TYPE_CHECKING:
    from provarmor.agent.learning_sink import LearningSink
    from provarmor.agent.response_sink import ResponseSetup, ResponseSink

log = logging.getLogger(__name__)
QUEUE_CAPACITY = 262_144
ALERTS_FILE = "agent-alerts.jsonl"
MODELS_DIR = "models"


@dataclass(slots=True, kw_only=True)
class AgentRun:
    """Everything one run holds; built by :data:`STARTUP`, released by :data:`TEARDOWN`."""

    settings: AgentSettings
    analysis: AnalysisConfig
    out: Path | None
    start: Callable[[SensorContext], LiveSensor]
    raw_out: Path | None = None
    raw_file: gzip.GzipFile | None = None
    host_id: str = ""
    output: Output | None = None
    """The agent's own alerts (``agent-alerts.jsonl``, in ``settings.alert_format``)."""
    spool: Spool | None = None
    sinks: list[Sink] = field(default_factory=list)
    sensor: LiveSensor | None = None
    queue: BoundedQueue[Event] = field(default_factory=lambda: BoundedQueue(QUEUE_CAPACITY))
    reader: threading.Thread | None = None
    sensor_alive: bool = True
    deliveries: list[Delivery] = field(default_factory=list)
    """Spool -> each sink (delivered events and failed writes counted per sink)."""
    extra_sinks: list[Sink] = field(default_factory=list)
    """Sinks the caller built (the manager uplink): delivered to as well, never replaced."""
    status: AgentStatus | None = None
    blind_alerts: int = 0
    learns: bool = False
    """Whether the standalone agent learns its host (``analysis.learning.enabled``)."""
    learning_sink: LearningSink | None = None
    response: ResponseSetup | None = None
    """Analysis with automatic response on this host (``--response-policy``)."""
    response_sink: ResponseSink | None = None


def _open_state(run: AgentRun) -> None:
    private_dir(run.settings.state_dir)
    run.host_id = read_host_identity().id


def _open_output(run: AgentRun) -> None:
    run.output = AlertFile(
        run.settings.state_dir / ALERTS_FILE, format=run.settings.alert_format, append=True
    )


def _response_sink(run: AgentRun, response: ResponseSetup) -> ResponseSink:
    from provarmor.agent.response_sink import ResponseSink  # the rules: only when used

    state = run.settings.state_dir
    run.response_sink = ResponseSink(state / "graph.db", setup=response, alerts=state / ALERTS_FILE)
    response.responder.keep_baseline()  # what the persistence files hold before any attack
    return run.response_sink


def _open_sinks(run: AgentRun) -> None:
    if run.out is not None:
        run.sinks = [NdjsonSink(run.out)]
        if run.response is not None:  # the lab: record and respond to what it records
            run.sinks.append(_response_sink(run, run.response))
    elif run.extra_sinks:
        run.sinks = []  # the uplink carries the events; no local graph needed
    else:
        state = run.settings.state_dir
        if run.response is not None:
            run.sinks = [_response_sink(run, run.response)]
        else:
            run.sinks = [GraphSink(state / "graph.db", settings=run.analysis.graph)]
        if run.learns and run.analysis.learning.enabled:
            from provarmor.agent.learning_sink import LearningSink  # numpy: only when used

            assert run.output is not None
            run.learning_sink = LearningSink(
                state / MODELS_DIR, config=run.analysis, output=run.output
            )
            run.sinks.append(run.learning_sink)
    run.sinks += run.extra_sinks


def _open_spool(run: AgentRun) -> None:
    settings = run.settings
    run.spool = Spool(
        settings.state_dir / "spool",
        max_bytes=settings.spool_max_bytes,
        fsync=settings.spool_fsync,
        consumers=[sink.name for sink in run.sinks],
    )
    for sink in run.sinks:
        committed = sink.committed()
        if committed is not None:
            try:
                run.spool.ack(sink.name, committed)
            except ValueError as exc:  # the spool lost its tail (power loss without fsync)
                log.warning("sink %s is ahead of the spool: %s", sink.name, exc)
    run.deliveries = [Delivery(run.spool, sink, settings.batch_events) for sink in run.sinks]


def _start_sensor(run: AgentRun) -> None:
    tap = None
    if run.raw_out is not None:
        raw_file = run.raw_file = gzip.GzipFile(run.raw_out, "ab")
        lock = threading.Lock()

        def tap(line: bytes) -> None:
            with lock:
                raw_file.write(line.rstrip(b"\n") + b"\n")

    context = SensorContext(
        exclude_pids=(os.getpid(),),
        audit_backlog_limit=run.settings.audit_backlog_limit,
        ebpf_perf_rb_pages=run.settings.ebpf_perf_rb_pages,
        ebpf_reorder_ms=run.settings.ebpf_reorder_ms,
        running_events=run.settings.running_events,
        raw=tap,
    )
    run.sensor = run.start(context)
    run.reader = threading.Thread(target=_read_sensor, args=(run,), daemon=True, name="sensor")
    run.reader.start()


def _read_sensor(run: AgentRun) -> None:
    assert run.sensor is not None
    put = run.queue.put_nowait
    try:
        for event in run.sensor.events():
            put(event)
    except Exception:  # a sensor failure must not kill the agent silently
        log.exception("the sensor failed")
    finally:
        run.sensor_alive = False


STARTUP: list[Callable[[AgentRun], None]] = [
    _open_state,
    _open_output,
    _open_sinks,
    _open_spool,
    _start_sensor,
]


def _stop_sensor(run: AgentRun) -> None:
    if run.sensor is not None:
        run.sensor.stop()
    if run.reader is not None:
        run.reader.join(timeout=30)
    while _move(run):  # what the sensor delivered before it stopped
        pass
    _deliver(run)


def _close_sinks(run: AgentRun) -> None:
    for sink in run.sinks:
        sink.close()
    if run.raw_file is not None:
        run.raw_file.close()


def _close_output(run: AgentRun) -> None:
    if run.output is not None:
        run.output.close()


def _close_spool(run: AgentRun) -> None:
    if run.spool is not None:
        run.spool.close()


def _final_status(run: AgentRun) -> None:
    if run.status is not None:
        run.status.running = False
        _refresh_status(run)


TEARDOWN: list[Callable[[AgentRun], None]] = [
    _stop_sensor,
    _final_status,
    _close_sinks,
    _close_output,
    _close_spool,
]
_OPENED_BY: dict[Callable[[AgentRun], None], Callable[[AgentRun], None]] = {
    _close_sinks: _open_sinks,
    _close_output: _open_output,
    _close_spool: _open_spool,
}
"""Teardown steps that undo a startup step: the ones that run when startup stopped before
the sensor started."""


def _move(run: AgentRun, timeout: float = 0.0) -> int:
    """Queue -> spool. Returns how many events (gaps included) were stored."""
    assert run.spool is not None
    batch = run.queue.get_batch(run.settings.batch_events, timeout=timeout)
    events = events_with_gap(batch, host_id=run.host_id, dataset="agent-queue")
    if events:
        run.spool.append(events)
    return len(events)


def _deliver(run: AgentRun) -> None:
    """Spool -> every sink, acknowledging each committed batch."""
    for delivery in run.deliveries:
        delivery.run()


def collect_counters(run: AgentRun) -> dict[str, int]:
    counters: dict[str, int] = {}
    if run.sensor is not None:
        counters.update({f"sensor.{k}": v for k, v in run.sensor.kernel_counters().items()})
    queue = run.queue.counters()
    counters["queue.put"] = queue.put
    counters["queue.dropped"] = queue.dropped_total
    counters["queue.size"] = queue.size
    if run.spool is not None:
        spool = run.spool.counters()
        counters["spool.appended"] = spool.appended
        counters["spool.pending"] = spool.pending
        counters["spool.evicted.lost"] = spool.evicted_events
        counters["spool.corrupt_frames.lost"] = spool.corrupt_frames
        counters["spool.disk_bytes"] = spool.disk_bytes
    for delivery in run.deliveries:
        if delivery.delivered:
            counters[f"sink.{delivery.sink.name}.events"] = delivery.delivered
        if delivery.errors:
            counters[f"sink.{delivery.sink.name}.errors"] = delivery.errors
    if run.response_sink is not None:
        counters.update(run.response_sink.counters())
    return counters


def _refresh_status(run: AgentRun) -> None:
    now = time.time()
    counters = collect_counters(run)
    status = run.status
    assert status is not None
    interval = rates(status.counters, counters, now - status.updated_at)
    blind, reason = blindness(
        interval,
        sensor_alive=run.sensor_alive or not status.running,
        drop_ratio=run.settings.blind_drop_ratio,
    )
    if blind and not status.blind:
        _raise_blind(run, reason)
    status.counters, status.rates, status.updated_at = counters, interval, now
    status.blind, status.blind_reason = blind, reason
    status.learning = run.learning_sink.learning.current if run.learning_sink else None
    write_status(run.settings.state_dir, status)
    _report_status(run, status)


def _report_status(run: AgentRun, status: AgentStatus) -> None:
    """Sinks that forward health (the manager uplink) get the sensor's status too."""
    report = {
        "sensor": status.sensor,
        "healthy": not status.blind,
        "blind_reason": status.blind_reason,
        "counters": status.counters,
        "drops": {
            key: value
            for key, value in status.counters.items()
            if key.endswith((".lost", ".dropped"))
        },
    }
    for sink in run.sinks:
        forward = getattr(sink, "report_status", None)
        if forward is None:
            continue
        try:
            forward(report)
        except StorageError as exc:  # the manager is away: the next refresh tries again
            log.warning("sink %s: status not delivered: %s", sink.name, exc)


def _raise_blind(run: AgentRun, reason: str) -> None:
    """The ``sensor blind`` signal: an alert in the agent's output and the log."""
    log.error("sensor blind: %s", reason)
    now = time.time_ns()
    run.blind_alerts += 1
    alert = Alert(
        id=f"sensor-blind:{run.host_id}:{now}",
        rule_id="provarmor-agent-sensor-blind",
        rule_title="Sensor blind: events are being lost",
        level="high",
        description=reason,
        detector="agent",
        host_id=run.host_id,
        first_timestamp=now,
        last_timestamp=now,
    )
    assert run.output is not None
    run.output.alert(alert)


class Agent:
    """Runs the agent until ``stop`` is set (or ``duration`` seconds pass)."""

    def __init__(  # noqa: PLR0913
        self,
        settings: AgentSettings,
        *,
        analysis: AnalysisConfig | None = None,
        out: Path | None = None,
        raw_out: Path | None = None,
        start: Callable[[SensorContext], LiveSensor] | None = None,
        sinks: list[Sink] | None = None,
        response: ResponseSetup | None = None,
    ) -> None:
        """``analysis``: the configured analysis settings (the local graph store's, and the
        standalone agent's learning mode: with no ``out`` and no ``sinks`` it learns this
        host's anomaly model unless ``learning.enabled`` is off); ``None``: the defaults,
        without learning. ``start``: builds and starts the sensor (default: the one
        ``settings.sensor`` names). ``raw_out``: also keep the sensor's raw records there
        (gzip), for datasets. ``sinks``: more sinks built by the caller (the manager uplink).
        ``response``: the standalone agent analyses its events and responds by policy."""
        self.run_state = AgentRun(
            settings=settings,
            analysis=analysis or AnalysisConfig(),
            out=out,
            start=start or partial(start_sensors, settings),
            raw_out=raw_out,
            extra_sinks=list(sinks or []),
            learns=analysis is not None,
            response=response,
        )

    def run(
        self,
        stop: threading.Event,
        *,
        duration: float | None = None,
        on_ready: Callable[[AgentStatus], None] | None = None,
    ) -> AgentStatus:
        """``on_ready`` is called once, when the sensor is up and events flow to the spool."""
        run = self.run_state
        done: list[Callable[[AgentRun], None]] = []
        try:
            for step in STARTUP:
                step(run)
                done.append(step)
            assert run.sensor is not None
            now = time.time()
            run.status = AgentStatus(
                pid=os.getpid(),
                sensor=run.sensor.name,
                host_id=run.host_id,
                started_at=now,
                updated_at=now,
            )
            write_status(run.settings.state_dir, run.status)
            if on_ready is not None:
                on_ready(run.status)
            self._loop(stop, duration)
        finally:
            started = _start_sensor in done
            for step in TEARDOWN:
                if started or _OPENED_BY.get(step) in done:
                    step(run)
        assert run.status is not None
        return run.status

    def _loop(self, stop: threading.Event, duration: float | None) -> None:
        run = self.run_state
        deadline = None if duration is None else time.monotonic() + duration
        next_status = time.monotonic() + run.settings.status_interval_seconds
        linger = run.settings.flush_interval_seconds
        while not stop.is_set():
            began = time.monotonic()
            if deadline is not None and began >= deadline:
                break
            moved = _move(run, timeout=0.2)
            if moved:
                _deliver(run)
            # At low rates, gather a cycle's worth of events before the next spool write and
            # store transaction: cost then follows the rate, not the number of wake-ups.
            rest = linger - (time.monotonic() - began)
            if moved < run.settings.batch_events and rest > 0:
                stop.wait(rest)
            if time.monotonic() >= next_status:
                if run.response is not None:
                    run.response.responder.tick()  # an isolation's automatic release
                _refresh_status(run)
                next_status = time.monotonic() + run.settings.status_interval_seconds
