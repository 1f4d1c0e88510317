"""What the generated bpftrace program should report (options) and what the kernel offers
(features). Plain values: no I/O here."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NOISE_PREFIXES = ("/dev/null", "/dev/urandom", "/proc/self/", "/sys/devices/system/cpu/")
PTRACE_REQUESTS = (0, 4, 5, 6, 13, 16, 0x4206)
"""TRACEME, POKETEXT, POKEDATA, POKEUSER, SETREGS, ATTACH, SEIZE: the requests that take
control of or write into another process (reads such as PEEKDATA are not reported)."""

FAMILIES = ("process", "file", "network", "identity")
"""Groups of probes: exec/fork/exit; file syscalls; sockets; and the rest (setuid/setgid,
ptrace, module loads, memfd_create, executable file mappings)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgramOptions:
    """What the generated program reports, and its size limits."""

    families: tuple[str, ...] = FAMILIES
    """Which probe groups to load (see :data:`FAMILIES`); fewer probes start and stop faster."""
    max_args: int = 24
    """argv elements read per exec (the rest are marked as cut)."""
    max_cwd_steps: int = 24
    """Steps of the walk up from an exec's working directory (one per path component or
    mount crossed). The BPF verifier explores every step: 24 costs ~18k instructions."""
    flush_ms: int = 1000
    """How often socket byte counts are flushed (and the heartbeat line sent)."""
    noise_prefixes: tuple[str, ...] = DEFAULT_NOISE_PREFIXES
    """Read-only opens of paths starting with one of these are not reported."""
    skip_missing_reads: bool = True
    """Drop read-only opens that failed with ENOENT (library and module search noise)."""
    socket_io: bool = True
    """Aggregate read/write/send/recv on IPv4/IPv6 sockets."""
    ptrace_requests: tuple[int, ...] = PTRACE_REQUESTS
    mount_offset: int = 32
    """``offsetof(struct mount, mnt)``; checked in the kernel before it is used."""
    own_cgroup: int = 0
    """Kernel id of ProvArmor's own cgroup (:mod:`provarmor.sources.owngroup`): a process in
    it, or in a group directly below it, is marked (``L``) when it forks or execs. 0: mark
    nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelFeatures:
    """What this kernel offers: tracepoint names (``group:name``) and format details."""

    tracepoints: frozenset[str]
    exit_has_group_dead: bool = True


def socket_io(options: ProgramOptions) -> bool:
    """Whether socket read/write/send/recv are aggregated (needs the network family)."""
    return options.socket_io and "network" in options.families
