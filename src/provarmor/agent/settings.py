"""Settings of the live agent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from provarmor.model.errors import ConfigError
from provarmor.model.setting import Maturity, setting
from provarmor.outputs.alert_formats import AlertFormat
from provarmor.sources.registry import SENSORS

AUTO = "auto"
"""The sensor choice that takes the first backend of ``SENSORS`` able to start."""

SensorChoice = StrEnum(  # type: ignore[misc]  # members come from the registry
    "SensorChoice", {name.upper(): name for name in (AUTO, *SENSORS)}
)
"""``auto`` and every registered sensor (the ``agent.sensor`` setting, ``--sensor``)."""


class HostLogChoice(StrEnum):
    AUTO = "auto"
    JOURNALD = "journald"
    SYSLOG = "syslog"
    OFF = "off"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSettings:
    sensor: SensorChoice = setting(
        SensorChoice(AUTO),
        "Sensor backend: `ebpf` (bpftrace), `audit` (Linux audit netlink), or `auto` "
        "(eBPF when its prerequisites hold, else audit).",
    )
    host_logs: HostLogChoice = setting(
        HostLogChoice.AUTO,
        "Host log source read beside the kernel sensor (logins, sudo, accounts, cron): "
        "`journald` (journalctl, resuming after a saved cursor), `syslog` (tails "
        "`host_log_path`, resuming at a saved inode and offset), `auto` (journald when it runs, "
        "else `host_log_path` when it exists, else none) or `off`.",
        maturity=Maturity.INCUBATING,
    )
    host_log_path: Path = setting(
        Path("/var/log/auth.log"),
        "The syslog file the `syslog` host log source tails (`/var/log/secure` on Red Hat).",
        maturity=Maturity.INCUBATING,
    )
    state_dir: Path = setting(
        Path("/var/lib/provarmor"),
        "Where the agent keeps its spool, status file and graph store.",
    )
    spool_max_bytes: int = setting(
        256 * 1024 * 1024,
        "Disk the spool may use; past it the oldest unacknowledged events are evicted "
        "(counted, and a gap event marks the loss).",
    )
    spool_fsync: bool = setting(
        False,
        "fdatasync every spool append (survives power loss; slower).",
    )
    batch_events: int = setting(5000, "Most events moved from the sensor per cycle.")
    flush_interval_seconds: float = setting(
        0.25,
        "A cycle that moved fewer than `batch_events` waits out this long before the next, "
        "so spool writes and store transactions are batched at low rates.",
    )
    status_interval_seconds: float = setting(2.0, "How often the status file is rewritten.")
    blind_drop_ratio: float = setting(
        0.01,
        "Raise `sensor blind` when more than this fraction of events in a status interval "
        "was lost.",
    )
    alert_format: AlertFormat = setting(
        AlertFormat("ecs"),
        "Format of the agent's own alerts (sensor blind; learning mode's anomaly model), "
        "written to `agent-alerts.jsonl` in `state_dir`: any alert format `provarmor detect "
        "--alert-format` takes.",
    )
    audit_backlog_limit: int = setting(
        8192, "Kernel audit backlog limit set while the audit sensor runs."
    )
    ebpf_perf_rb_pages: int = setting(
        2048,
        "Per-CPU ring buffer pages for bpftrace output (4 KiB each: 8 MiB per CPU). bpftrace "
        "drains them with one thread; a package install's bursts overflow 256 pages.",
        maturity=Maturity.INCUBATING,
    )
    ebpf_reorder_ms: int = setting(
        50,
        "How long each eBPF record waits for older records still in other CPUs' buffers, "
        "so records are decoded in kernel-time order (a child's fork after its parent's "
        "exec); every event arrives this much later. 0: in the order bpftrace reads them.",
        maturity=Maturity.INCUBATING,
    )

    running_events: bool = setting(
        True,
        "At start, after reading the running processes from /proc, emit a `running` event "
        "for each (ancestors first, with a socket it listens on or a connection it accepted), "
        "so the lineage context knows the sessions, schedulers and servers that were already "
        "running (an ssh terminal opened before the agent is interactive administration).",
    )

    def __post_init__(self) -> None:
        if self.ebpf_reorder_ms < 0:
            raise ConfigError(
                f"must be 0 or more, not {self.ebpf_reorder_ms}", location="agent.ebpf_reorder_ms"
            )
