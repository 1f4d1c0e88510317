"""Settings of the eBPF sensor (declared here, loaded by the pipeline's config; no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from provarmor.model.errors import ConfigError
from provarmor.sources.ebpf.bpftext import EXCLUDED_PID_SLOTS
from provarmor.sources.ebpf.options import ProgramOptions


@dataclass(frozen=True, slots=True, kw_only=True)
class EbpfSettings:
    """How the sensor runs bpftrace. Maturity: experimental."""

    bpftrace: str = "bpftrace"
    """The bpftrace executable (a name looked up on PATH, or a path)."""
    program: ProgramOptions = field(default_factory=ProgramOptions)
    exclude_pid: int = 0
    """The agent's pid, never traced; 0 means the current process."""
    exclude_pids: tuple[int, ...] = ()
    """Further pids never traced (at most three: the program has four slots)."""
    perf_rb_pages: int = 0
    """Pages per CPU of bpftrace's perf ring buffer (``BPFTRACE_PERF_RB_PAGES``); 0 keeps
    bpftrace's default (64). Smaller buffers lose records sooner under bursts."""
    strlen: int = 200
    """Bytes read per string (``BPFTRACE_STRLEN``; 200 is bpftrace 0.17's maximum). Longer
    paths and arguments are cut."""
    map_keys_max: int = 16384
    """Entries per BPF map (``BPFTRACE_MAP_KEYS_MAX``): threads in a syscall, and sockets
    with traffic per flush period."""
    read_buffer_bytes: int = 256 * 1024 * 1024
    """bpftrace output read but not decoded yet (a burst waits here rather than in the
    kernel's small per-CPU buffers). When full, reading stops, and the kernel counts losses."""
    reorder_ms: int = 50
    """How long each record waits for older records still in other CPUs' buffers before it
    is decoded (:mod:`provarmor.sources.ebpf.reorder`): every event comes this much later.
    0 decodes records in the order bpftrace reads them."""
    queue_events: int = 65536
    """Decoded events waiting for the consumer. When full, reading stops, the kernel buffer
    fills and bpftrace counts the loss: back-pressure ends in a counted ``gap``."""
    start_timeout_s: float = 90.0
    """bpftrace compiles and attaches ~100 probes at start; ~7 s on two cores."""
    stop_timeout_s: float = 45.0
    """bpftrace detaches every probe before it runs ``END``: ~7 s for ~100 probes."""
    mount_tracefs: bool = True
    """Mount tracefs at start when it is missing."""
    seed_from_proc: bool = True
    """Read the running processes from ``/proc`` once the probes are attached."""
    running_events: bool = True
    """With ``seed_from_proc``: emit a ``running`` event for each process read (ancestors
    first, with a socket it listens on or a connection it accepted), so that the lineage
    context knows what was running before the agent (sessions, cron, servers)."""

    def excluded_pids(self, current: int) -> tuple[int, ...]:
        """The program's ``$1``..``$4``: the agent (``current`` unless ``exclude_pid`` says
        otherwise), then ``exclude_pids``; unused slots hold 0, a pid no process has."""
        pids = (self.exclude_pid or current, *self.exclude_pids)
        if len(pids) > EXCLUDED_PID_SLOTS:
            raise ConfigError(
                f"at most {EXCLUDED_PID_SLOTS - 1} extra pids can be excluded, got {pids[1:]}",
                location="ebpf.exclude_pids",
            )
        return pids + (0,) * (EXCLUDED_PID_SLOTS - len(pids))
