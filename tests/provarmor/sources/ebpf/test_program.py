"""The generated bpftrace program (its text; loading it is tested in test_runner.py)."""

from __future__ import annotations

import re

import pytest

from provarmor.sources.ebpf.program import (
    FILTER,
    KernelFeatures,
    ProgramOptions,
    generate_program,
    skipped_tracepoints,
)
from provarmor.sources.ebpf.wire import LAYOUTS

SYSCALLS = (
    "execve",
    "execveat",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "open",
    "openat",
    "openat2",
    "creat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "lchown",
    "fchown",
    "fchownat",
    "chdir",
    "fchdir",
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "read",
    "write",
    "readv",
    "writev",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "ptrace",
    "memfd_create",
    "mmap",
)
"""The syscalls of this host's kernel the program uses (init_module/finit_module absent:
the kernel is built without module support)."""
KERNEL = KernelFeatures(
    tracepoints=frozenset(
        [f"syscalls:sys_{side}_{name}" for name in SYSCALLS for side in ("enter", "exit")]
        + ["sched:sched_process_exec", "sched:sched_process_exit"]
    )
)
WITH_MODULES = KernelFeatures(
    tracepoints=KERNEL.tracepoints
    | {f"syscalls:sys_{s}_{m}" for s in ("enter", "exit") for m in ("init_module", "finit_module")}
)


def _probes(text: str) -> list[str]:
    return re.findall(r"^(tracepoint:\S+|BEGIN|END|interval:\S+)", text, flags=re.MULTILINE)


def test_every_record_kind_is_printed_by_some_probe() -> None:
    text = generate_program(ProgramOptions(own_cgroup=1), WITH_MODULES)
    for kind in LAYOUTS:
        assert f'printf("{kind}\\t' in text, kind
    assert 'printf("s\\t%d\\t%lu\\t%s\\n"' in text


def test_every_syscall_entry_probe_is_filtered_on_agent_and_self() -> None:
    assert FILTER == "pid != $1 && pid != $2 && pid != $3 && pid != $4 && pid != $5"
    text = generate_program(ProgramOptions(), KERNEL)
    entries = re.findall(r"^tracepoint:syscalls:sys_enter_\w+ (/[^\n]*/)", text, re.MULTILINE)
    assert len(entries) == len(SYSCALLS) - 2  # fork/vfork: nothing to park at entry
    assert all(FILTER in predicate for predicate in entries)
    for name in ("fork", "vfork", "clone", "clone3"):
        assert (
            f"tracepoint:syscalls:sys_exit_{name} /{FILTER} && args->ret == 0 && pid == tid/"
            in text
        )
    for name in ("fork", "vfork"):  # the creator's side
        assert f"tracepoint:syscalls:sys_exit_{name} /{FILTER} && args->ret > 0/" in text


def test_missing_tracepoints_are_left_out_and_reported() -> None:
    text = generate_program(ProgramOptions(), KERNEL)
    assert "init_module" not in text
    assert skipped_tracepoints(ProgramOptions(), KERNEL) == [
        "syscalls:sys_enter_finit_module",
        "syscalls:sys_enter_init_module",
        "syscalls:sys_exit_finit_module",
        "syscalls:sys_exit_init_module",
    ]
    assert "sys_exit_finit_module" in generate_program(ProgramOptions(), WITH_MODULES)


def test_families_select_probes_and_end_clears_every_map() -> None:
    files_only = generate_program(ProgramOptions(families=("file",), socket_io=False), KERNEL)
    probes = _probes(files_only)
    assert "tracepoint:sched:sched_process_exec" not in probes
    assert "tracepoint:syscalls:sys_exit_openat" in probes
    assert "@io0" not in files_only and "@gen" not in files_only
    full = generate_program(ProgramOptions(), KERNEL)
    used = set(re.findall(r"(@\w+)\[", full)) | {"@gen"}
    end = full[full.index("\nEND\n") :]
    assert {name for name in used if f"clear({name});" in end} == used
    assert end.index("print(@io0)") < end.index("clear(@io0)") < end.index('printf("e\\t')
    assert end.index("print(@records)") < end.index("clear(@records)")
    printfs = re.findall(r"printf\([^;]*\);( @records = count\(\);)?", full)
    assert printfs.count("") == 1  # every record is counted but the END marker
    with pytest.raises(ValueError, match="unknown probe families"):
        generate_program(ProgramOptions(families=("files",)), KERNEL)


def test_options_reach_the_text() -> None:
    text = generate_program(
        ProgramOptions(max_args=7, max_cwd_steps=5, flush_ms=250, mount_offset=40), KERNEL
    )
    assert "while ($i < 7)" in text and "while ($i < 5)" in text
    assert "interval:ms:250" in text
    assert "pwd.mnt - 40)" in text
