"""Facts about processes and the machine read from /proc, as the ground truth records them."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from provarmor.model.time_units import NS_PER_SECOND

_TICKS = os.sysconf("SC_CLK_TCK")


def boot_time_ns() -> int:
    """When the machine booted, ns since the epoch (``btime``: one-second resolution)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return int(line.split()[1]) * NS_PER_SECOND
    return 0


def process_start_ns(pid: int) -> int:
    """When ``pid`` started, ns since the epoch (accurate to about a second); 0 if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return boot_time_ns() + ticks * NS_PER_SECOND // _TICKS


def process_executable(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def host_name() -> str:
    return socket.gethostname()
