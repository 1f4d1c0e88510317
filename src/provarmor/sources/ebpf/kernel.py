"""What the eBPF sensor needs from the host, checked up front with a message naming what is
missing, and what this kernel offers (which tracepoints exist, their format details).

Requirements: root, the ``bpftrace`` binary (Debian: ``apt-get install bpftrace``), kernel
BTF (``/sys/kernel/btf/vmlinux``: there are no kernel headers, so nothing is compiled against
them) and tracefs. tracefs is mounted here when it is missing and ``mount_tracefs`` is set:
bpftrace reads tracepoint formats from it and a fresh VM may not have it mounted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from provarmor.model.errors import ProvArmorError
from provarmor.sources.ebpf.options import KernelFeatures

TRACEFS = Path("/sys/kernel/tracing")
BTF = Path("/sys/kernel/btf/vmlinux")
_MOUNT_TIMEOUT_S = 10


class EbpfUnavailable(ProvArmorError):
    """The eBPF sensor cannot run on this host; the message lists every missing piece."""


def check_prerequisites(
    *, bpftrace: str, btf: Path = BTF, tracefs: Path = TRACEFS, mount_tracefs: bool = True
) -> str:
    """The bpftrace executable to run, or :class:`EbpfUnavailable` naming what is missing."""
    missing: list[str] = []
    if os.geteuid() != 0:
        missing.append(f"root (running as uid {os.geteuid()})")
    binary = shutil.which(bpftrace)
    if binary is None:
        missing.append(f"the bpftrace binary ({bpftrace!r} not found; apt-get install bpftrace)")
    if not btf.is_file():
        missing.append(f"kernel BTF at {btf} (a kernel built with CONFIG_DEBUG_INFO_BTF)")
    if not missing and not (tracefs / "events").is_dir():
        problem = _mount_tracefs(tracefs) if mount_tracefs else "not mounted"
        if problem:
            missing.append(f"tracefs at {tracefs} ({problem})")
    if missing or binary is None:
        raise EbpfUnavailable("the eBPF sensor needs " + "; ".join(missing))
    return binary


def _mount_tracefs(tracefs: Path) -> str:
    """Mount tracefs; ``""`` on success, else why it failed."""
    try:
        result = subprocess.run(
            ["mount", "-t", "tracefs", "nodev", str(tracefs)],
            capture_output=True,
            text=True,
            timeout=_MOUNT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not mounted, and mount failed: {exc}"
    if result.returncode != 0 or not (tracefs / "events").is_dir():
        return f"not mounted, and mount failed: {result.stderr.strip() or result.returncode}"
    return ""


def detect_features(tracefs: Path = TRACEFS) -> KernelFeatures:
    """The ``syscalls`` and ``sched`` tracepoints this kernel has."""
    events = tracefs / "events"
    names: set[str] = set()
    for group in ("syscalls", "sched"):
        directory = events / group
        if directory.is_dir():
            names.update(f"{group}:{entry.name}" for entry in directory.iterdir() if entry.is_dir())
    exit_format = events / "sched" / "sched_process_exit" / "format"
    try:
        group_dead = "group_dead" in exit_format.read_text()
    except OSError:
        group_dead = False
    return KernelFeatures(tracepoints=frozenset(names), exit_has_group_dead=group_dead)


def bpftrace_version(binary: str) -> str:
    """``bpftrace --version`` output, e.g. ``bpftrace v0.17.0``."""
    result = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return result.stdout.strip() or result.stderr.strip()
