"""Generates the bpftrace program the eBPF sensor runs (pure: options and features in, text out).

The program targets Debian 12's bpftrace 0.17 on a BTF kernel without kernel headers, kprobes
or raw tracepoints: only ``tracepoint:`` probes, BTF struct access through ``curtask``, and
the wire format of :mod:`provarmor.sources.ebpf.wire`. Design points:

* Every probe is filtered on :data:`FILTER`: ``$1``..``$4`` are pids the agent excludes
  (its own first; unused slots are 0) and ``$5`` is bpftrace's own pid (the runner passes
  them all), so the sensor never traces itself into a loop.
* Syscalls are reported at ``sys_exit`` with their return value; arguments are parked per
  thread at ``sys_enter`` (maps keyed by ``tid``). Strings are read at exit, when the user
  memory is still there.
* A new process is reported by the CHILD when it returns 0 from fork/vfork/clone/clone3
  with ``pid == tid``: bpftrace 0.17 cannot reach the child task from ``sched_process_fork``
  (no raw tracepoints, no kprobes here) to tell a thread from a process, the child can.
  The child reads its parent from ``real_parent``, which is init or a subreaper once the
  creator has exited, so the creator reports the same fork too (``J``, the child's pid as
  its return value: fork/vfork always, clone/clone3 without ``CLONE_THREAD`` or
  ``CLONE_PARENT``, checked at entry so a new thread parks nothing) and the decoder
  matches the two. That pid is in the creator's pid namespace: the record carries the
  namespace depth and only depth 0 is used. The sensor must run in the initial pid
  namespace (bpftrace 0.17's ``pid``/``tid`` and ``/proc`` are read there): creators inside
  containers are skipped (counted), and their re-parented children keep the kernel's parent.
* Process identity: every record carries ``curtask->group_leader->start_boottime`` (ns since
  boot, counting suspend). ``/proc/PID/stat`` field 22 is the same value in clock ticks,
  rounded down, so the decoder rounds the ns down to ticks too and both sides compute the
  same start time (see :func:`provarmor.sources.procfs.ProcClock.start_from_boottime_ns`).
* Socket traffic is summed in the kernel per ``(pid, start, fd, direction)`` with
  ``stats()``, with the record time of its first and last byte beside it, and
  printed once per flush period. Two generations of maps take turns (``@gen``): at each
  tick the current one is retired and printed, and stays idle for a whole period while
  bpftrace's user space prints and clears it, so no update is lost between print and clear.
* Every record printed is counted in ``@records``, printed at ``END``: the decoder compares it
  with what it received and what bpftrace reported lost, and reports the rest as a gap.
* Failed read-only opens of missing files (``ENOENT``) and read-only opens under
  ``noise_prefixes`` are dropped in the kernel; everything else is reported, failures too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from provarmor.sources.ebpf.bpftext import (
    EXCLUDED_PID_SLOTS,
    FILTER,
    RECORDS,
    START,
    Block,
    emit,
    prefix_test,
)
from provarmor.sources.ebpf.options import (
    DEFAULT_NOISE_PREFIXES,
    FAMILIES,
    PTRACE_REQUESTS,
    KernelFeatures,
    ProgramOptions,
    socket_io,
)
from provarmor.sources.ebpf.probes import file_blocks, heartbeat, identity_blocks, process_blocks
from provarmor.sources.ebpf.socket_probes import socket_blocks
from provarmor.sources.ebpf.wire import IO_GENERATIONS

__all__ = [
    "DEFAULT_NOISE_PREFIXES",
    "EXCLUDED_PID_SLOTS",
    "FAMILIES",
    "FILTER",
    "PTRACE_REQUESTS",
    "START",
    "KernelFeatures",
    "ProgramOptions",
    "emit",
    "generate_program",
    "prefix_test",
    "skipped_tracepoints",
]


@dataclass(slots=True)
class _Program:
    features: KernelFeatures
    blocks: list[str] = field(default_factory=list)
    maps: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)

    def add(self, block: Block) -> None:
        missing = [name for name in block.needs if name not in self.features.tracepoints]
        if missing:
            self.skipped.extend(missing)
            return
        self.blocks.append(block.text)
        self.maps.update(block.maps)


def generate_program(options: ProgramOptions, features: KernelFeatures) -> str:
    """The bpftrace program text for ``options`` on a kernel with ``features``."""
    program = _Program(features)
    for block in _all_blocks(options, features):
        program.add(block)
    io_maps = [name for names in IO_GENERATIONS for name in names] if socket_io(options) else []
    end = ["END", "{"]
    end += [f"  print({name});" for name in (*io_maps, RECORDS)]
    end += [f"  clear({name});" for name in sorted(program.maps | {RECORDS})]
    marker = emit("e", [], start="0", counted=False).replace("tid, pid", "0, 0")
    end += ["  $t = nsecs;", f"  {marker}", "}"]
    return "\n\n".join([*program.blocks, "\n".join(end)]) + "\n"


def skipped_tracepoints(options: ProgramOptions, features: KernelFeatures) -> list[str]:
    """Tracepoints the program would use but this kernel lacks (their probes are left out)."""
    program = _Program(features)
    for block in _all_blocks(options, features):
        program.add(block)
    return sorted(set(program.skipped))


def _all_blocks(options: ProgramOptions, features: KernelFeatures) -> Iterable[Block]:
    begin = emit("b", [], start="0").replace("tid, pid", "0, 0")
    yield Block((), (), f"BEGIN\n{{\n  $t = nsecs;\n  {begin}\n}}")
    unknown = set(options.families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown probe families {sorted(unknown)}; known: {FAMILIES}")
    if "process" in options.families:
        yield from process_blocks(options, features)
    if "file" in options.families:
        yield from file_blocks(options)
    if "network" in options.families:
        yield from socket_blocks(options)
    if "identity" in options.families:
        yield from identity_blocks(options)
    yield heartbeat(options)
