"""Process, file and identity probes (their text; loading them is in test_runner.py)."""

from __future__ import annotations

from provarmor.sources.ebpf.bpftext import FILTER
from provarmor.sources.ebpf.options import KernelFeatures, ProgramOptions
from provarmor.sources.ebpf.probes import file_blocks, heartbeat, identity_blocks, process_blocks

FEATURES = KernelFeatures(tracepoints=frozenset())


def _text(blocks: object) -> str:
    return "\n".join(block.text for block in blocks)  # type: ignore[attr-defined]


def test_fork_is_reported_by_the_child_and_exit_by_the_last_thread() -> None:
    text = _text(process_blocks(ProgramOptions(), FEATURES))
    for name in ("fork", "vfork", "clone", "clone3"):
        assert (
            f"tracepoint:syscalls:sys_exit_{name} /{FILTER} && args->ret == 0 && pid == tid/"
            in text
        )
    assert f"sched_process_exit /{FILTER} && args->group_dead/" in text
    old = KernelFeatures(tracepoints=frozenset(), exit_has_group_dead=False)
    assert f"sched_process_exit /{FILTER} && pid == tid/" in _text(
        process_blocks(ProgramOptions(), old)
    )


def test_exec_reads_argv_and_walks_the_cwd_across_mounts() -> None:
    options = ProgramOptions(max_args=7, max_cwd_steps=5, mount_offset=40)
    text = _text(process_blocks(options, FEATURES))
    assert "while ($i < 7)" in text and "while ($i < 5)" in text
    assert "(uint64)$task->fs->pwd.mnt - 40)" in text
    assert "if ($m->mnt.mnt_root == $task->fs->pwd.mnt->mnt_root)" in text  # offset checked
    assert "delete(@xf[args->old_pid]);" in text


def test_noise_is_dropped_at_entry_and_missing_reads_at_exit() -> None:
    text = _text(file_blocks(ProgramOptions(noise_prefixes=("/dev/null",))))
    enter = text[text.index("sys_enter_openat") : text.index("sys_exit_openat")]
    assert "if (($fl & 0x243) == 0) {" in enter  # no O_WRONLY|O_RDWR|O_CREAT|O_TRUNC
    assert "0x6c756e2f7665642f" in enter
    assert "if ($skip == 0) {" in enter  # noise is never parked, so never reported
    exit_probe = text[text.index("sys_exit_openat") :]
    assert "if (!($ret == -2 && ($fl & 0x243) == 0)) {" in exit_probe
    quiet = _text(file_blocks(ProgramOptions(noise_prefixes=(), skip_missing_reads=False)))
    assert "$w0" not in quiet and "$ret == -2 " not in quiet


def test_ptrace_reports_only_the_requests_asked_for() -> None:
    text = _text(identity_blocks(ProgramOptions(ptrace_requests=(16, 0x4206))))
    assert "if (args->request == 16 || args->request == 16902) {" in text
    assert "(args->prot & 4) && !(args->flags & 0x20)" in text  # PROT_EXEC, not anonymous


def test_heartbeat_retires_the_current_map_before_printing_it() -> None:
    """print and clear run later in bpftrace's user space: the generation they name must
    not be the one the probes write to next (a flow starting in that lag lost its first
    byte's time: the live download test's flake)."""
    beat = heartbeat(ProgramOptions(flush_ms=250))
    assert beat.text.startswith("interval:ms:250")
    lines = [line.strip() for line in beat.text.splitlines()]
    gen0 = lines.index("if (@gen == 0) {")
    assert lines[gen0 + 1] == "@gen = 1;"
    assert lines.index("print(@io0);") < lines.index("} else {") < lines.index("print(@io1);")
    # the times of the first and last byte come just before the byte counts they belong to
    printed = [line for line in lines if line.startswith("print(")]
    assert printed[:3] == ["print(@if0);", "print(@il0);", "print(@io0);"]
    assert "@io" not in heartbeat(ProgramOptions(socket_io=False)).text


def test_the_creator_reports_its_child_processes_but_not_its_threads() -> None:
    text = _text(process_blocks(ProgramOptions(), FEATURES))
    for name in ("fork", "vfork"):
        probe = f"tracepoint:syscalls:sys_exit_{name} /{FILTER} && args->ret > 0/"
        body = text[text.index(probe) :]
        assert body.index('printf("J\\t') < body.index("}")
    clone = text[text.index("sys_enter_clone /") : text.index("sys_exit_clone /@fk")]
    assert "if (((args->clone_flags) & 0x18000) == 0) {" in clone  # CLONE_THREAD|CLONE_PARENT
    clone3 = text[text.index("sys_enter_clone3 /") : text.index("sys_exit_clone3 /@fk")]
    assert "if (((*(uint64 *)args->uargs) & 0x18000) == 0) {" in clone3
    for name in ("clone", "clone3"):
        exit_probe = text[text.index(f"sys_exit_{name} /@fk[tid]/") :]
        assert exit_probe.index('if (args->ret > 0) { printf("J\\t') < exit_probe.index(
            "delete(@fk[tid]);"
        )
    assert "curtask->thread_pid->level" in text


def test_processes_of_provarmors_cgroup_are_marked_after_fork_and_exec() -> None:
    """In the group or in one directly below it (the lab's machinery jail)."""
    text = _text(process_blocks(ProgramOptions(own_cgroup=4242), FEATURES))
    below = "$task->cgroups->dfl_cgrp->self.parent->cgroup->kn->id == 4242"
    marks = text.count(f'if (cgroup == 4242 || {below}) {{ printf("L\\t')
    assert marks == 5  # exec, and the child's side of fork, vfork, clone, clone3
    assert "cgroup ==" not in _text(process_blocks(ProgramOptions(), FEATURES))


def test_an_exec_names_its_controlling_terminal_when_it_has_one() -> None:
    """In a probe of its own, attached just before the exec record's (same tracepoint)."""
    text = _text(process_blocks(ProgramOptions(), FEATURES))
    mark = '$tty = curtask->signal->tty;\n  if ($tty != 0) {\n    printf("I\\t'
    assert text.count(mark) == 1  # exec only: a fork keeps its parent's terminal
    after = text[text.index(mark) :]
    assert (
        after.index("$tty->name);")
        < after.index("sched_process_exec")
        < after.index('printf("E\\t')
    )
