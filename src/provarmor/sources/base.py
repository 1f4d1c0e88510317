"""The two source seams and the ingest report every importer fills.

An :class:`Importer` reads a recorded file; a :class:`LiveSensor` reads the running kernel.
Both yield canonical events; anything an importer could not turn into an event is counted in
its :class:`IngestReport` with a message naming file and line, never raised, never silent,
and what a sensor's kernel lost is in its counters (and a ``gap`` event in the stream).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provarmor.model.errors import ConfigError, ParseError
from provarmor.model.event import Event

MAX_KEPT_ERRORS = 50
"""How many reject messages a report keeps verbatim; the rest are only counted."""
REJECT_ALLOWANCE = 100_000
"""An input with more rejected records than this and than events is not read further: it
is not in the format it was read as (or is junk), and rejecting it line by line would cost
minutes for nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HostContext:
    """The host recorded data came from, when the data itself does not say."""

    id: str = "localhost"
    name: str = ""
    boot_id: str = ""


@dataclass(slots=True, kw_only=True)
class IngestReport:
    """What a source read, produced, rejected and deliberately left out."""

    source: str
    records: int = 0
    """Raw records read (lines, audit records, CDM datums)."""
    events: int = 0
    """Canonical events produced."""
    rejected: int = 0
    """Raw records that could not be parsed (each also in ``errors`` up to a limit)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Records read but deliberately not turned into events, by reason."""
    dropped_fields: Counter[str] = field(default_factory=Counter)
    """Fields removed on purpose (ground-truth labels such as ``is_warn``), by name."""
    errors: list[str] = field(default_factory=list)
    stopped: str = ""
    """Why an input was not read to its end (truncated, past a bound, hopeless); kept even
    when ``errors`` is full."""

    def reject(self, error: ParseError) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(str(error))

    def stop(self, error: ParseError) -> None:
        """The input ends early here: a rejected record, and the reason it ended."""
        self.records += 1
        self.reject(error)
        self.stopped = self.stopped or str(error)

    @property
    def overwhelmed(self) -> bool:
        """Whether rejects have passed :data:`REJECT_ALLOWANCE` and outnumber events."""
        return self.rejected > REJECT_ALLOWANCE and self.rejected > self.events

    def give_up(self, location: str) -> None:
        """Record that the rest of an overwhelmed input is not read."""
        self.stopped = self.stopped or str(
            ParseError(
                f"gave up after {self.rejected:,} rejected records and {self.events:,} events: "
                "the rest is not read (is the format right?)",
                location=location,
            )
        )

    def merge(self, other: IngestReport) -> None:
        self.records += other.records
        self.events += other.events
        self.rejected += other.rejected
        self.skipped.update(other.skipped)
        self.dropped_fields.update(other.dropped_fields)
        room = MAX_KEPT_ERRORS - len(self.errors)
        self.errors.extend(other.errors[: max(room, 0)])
        self.stopped = self.stopped or other.stopped


class Importer(Protocol):
    """Reads one recorded file, streaming, in constant memory."""

    def __call__(
        self, path: Path, *, report: IngestReport, host: HostContext
    ) -> Iterator[Event]: ...


class SensorUnavailable(ConfigError):
    """This host cannot run the sensor (the message says what is missing)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorContext:
    """What the agent hands a live sensor it builds: its settings for the sensors, the
    processes never to trace, and a tap for raw records."""

    exclude_pids: tuple[int, ...]
    """Processes never traced, the agent's own first."""
    audit_backlog_limit: int
    """Kernel audit backlog limit set while the audit sensor runs."""
    ebpf_perf_rb_pages: int
    """Per-CPU ring buffer pages for bpftrace output."""
    ebpf_reorder_ms: int = 50
    """How long each eBPF record waits for older ones from other CPUs' buffers."""
    running_events: bool = True
    """Emit the ``running`` events of the processes read from ``/proc`` at start."""
    raw: Callable[[bytes], None] | None = None
    """Sees every raw sensor record (one line, no newline) before it is decoded."""


class LiveSensor(Protocol):
    """Reads the running kernel: starts, yields events until stopped, and reports what the
    kernel lost."""

    name: str

    def start(self) -> None:
        """Begin collecting; raise :class:`SensorUnavailable` naming what is missing."""

    def events(self) -> Iterator[Event]:
        """Events as they arrive; ends after :meth:`stop` once everything is drained."""

    def stop(self) -> None: ...

    def kernel_counters(self) -> dict[str, int]:
        """``events``, ``lost`` (kernel-side), ``parse_errors`` and backend-specific counts."""


SensorFactory = Callable[[SensorContext], LiveSensor]
"""How a sensor is built (its class, usually); registered in
:data:`provarmor.sources.registry.SENSORS`."""
