"""The probes of the bpftrace program for processes, files and the rest (identity changes,
ptrace, module loads, memfd, executable mappings), plus the heartbeat; sockets are in
:mod:`provarmor.sources.ebpf.socket_probes`. Each builder yields :class:`Block` values."""

from __future__ import annotations

from collections.abc import Iterable

from provarmor.sources.ebpf.bpftext import (
    AT_FDCWD,
    Block,
    emit,
    emit_string,
    enter_exit,
    file_of,
    fill,
    needs,
    prefix_test,
    prefix_words,
    tracepoint,
)
from provarmor.sources.ebpf.options import KernelFeatures, ProgramOptions, socket_io
from provarmor.sources.ebpf.wire import IO_GENERATIONS

# -- processes ------------------------------------------------------------------------------

_ARGV = """%PROBE% /%FILTER%/
{
  $t = nsecs;
  $i = 0;
  while ($i < %MAX%) {
    $p = *(args->argv + $i);
    if ($p == 0) { break; }
    %STRING%
    $i++;
  }
  $more = 0;
  if ($i == %MAX%) { if (*(args->argv + $i) != 0) { $more = 1; } }
  %EMIT%
  @xf[tid] = (uint64)args->filename;
}

%EXIT% /@xf[tid]/
{
  if (args->ret < 0) {
    $t = nsecs;
    %FAILED%
  }
  delete(@xf[tid]);
}"""

_CWD = """tracepoint:sched:sched_process_exec /%FILTER%/
{
  $t = nsecs;
  $task = curtask;
  $d = $task->fs->pwd.dentry;
  $m = (struct mount *)((uint64)$task->fs->pwd.mnt - %MOUNT_OFFSET%);
  $complete = 0;
  if ($m->mnt.mnt_root == $task->fs->pwd.mnt->mnt_root) {
    $i = 0;
    while ($i < %STEPS%) {
      if ($d == $m->mnt.mnt_root) {
        if ($m->mnt_parent == $m) { $complete = 1; break; }
        $d = $m->mnt_mountpoint;
        $m = $m->mnt_parent;
      } else {
        if ($d == $d->d_parent) { $complete = 1; break; }
        %STRING%
        $d = $d->d_parent;
      }
      $i++;
    }
  }
  %EMIT%
}"""

_TTY = """tracepoint:sched:sched_process_exec /%FILTER%/
{
  $t = nsecs;
  $tty = curtask->signal->tty;
  if ($tty != 0) {
    %EMIT%
  }
}"""
"""``I`` when the process has a controlling terminal at its exec (its ``signal->tty``), with
the kernel's name of it. A probe of its own (the name is 64 bytes of stack, too much beside
the exec record's), attached just before the exec record's: the same tracepoint call runs
both, one after the other, on one CPU, so ``I`` comes just before its ``E``."""

_EXEC = """tracepoint:sched:sched_process_exec /%FILTER%/
{
  $t = nsecs;
  $task = curtask;
  %EMIT%
  delete(@xf[args->old_pid]);
}"""

_FORK = """%PROBE% /%FILTER% && args->ret == 0 && pid == tid/
{
  $t = nsecs;
  $task = curtask;
  %EMIT%
}"""

_FORK_PARENT = """%PROBE% /%FILTER% && args->ret > 0/
{
  $t = nsecs;
  %EMIT%
}"""

CLONE_NOT_A_CHILD = 0x18000
"""``CLONE_THREAD | CLONE_PARENT``: a thread, or a child of the caller's parent; neither is
a child of the caller, so the creator's side reports neither."""
_CREATED = ["args->ret", "curtask->thread_pid->level"]

_EXIT = """tracepoint:sched:sched_process_exit /%FILTER% && %LAST%/
{
  $t = nsecs;
  %EMIT%
}"""


def process_blocks(options: ProgramOptions, features: KernelFeatures) -> Iterable[Block]:
    for syscall in ("execve", "execveat"):
        text = fill(
            _ARGV,
            PROBE=tracepoint("sys_enter_" + syscall),
            EXIT=tracepoint("sys_exit_" + syscall),
            MAX=options.max_args,
            STRING=emit_string("str($p)"),
            EMIT=emit("V", ["$i", "$more"]),
            FAILED=emit("X", ["args->ret"], "str(@xf[tid])"),
        )
        yield Block(needs("sys_enter_" + syscall, "sys_exit_" + syscall), ("@xf",), text)
    credentials = [
        "$task->real_parent->tgid",
        "$task->real_parent->group_leader->start_boottime",
        "$task->cred->uid.val",
        "$task->cred->euid.val",
        "$task->cred->gid.val",
        "$task->cred->egid.val",
    ]
    cwd_text = fill(
        _CWD,
        MOUNT_OFFSET=options.mount_offset,
        STEPS=options.max_cwd_steps,
        STRING=emit_string("str($d->d_name.name)"),
        EMIT=emit("Z", ["$complete"]),
    )
    yield Block(needs("sched_process_exec"), (), cwd_text)
    yield Block(needs("sched_process_exec"), (), fill(_TTY, EMIT=emit("I", [], "$tty->name")))
    own = _own_mark(options)
    exec_text = fill(
        _EXEC, EMIT=own + emit("E", ["args->old_pid", *credentials], "str(args->filename)")
    )
    yield Block(needs("sched_process_exec"), ("@xf",), exec_text)
    for syscall in ("fork", "vfork", "clone", "clone3"):
        text = fill(
            _FORK,
            PROBE=tracepoint("sys_exit_" + syscall),
            EMIT=own + emit("F", credentials, "comm"),
        )
        yield Block(needs("sys_exit_" + syscall), (), text)
    yield from _fork_parent_blocks()
    last = "args->group_dead" if features.exit_has_group_dead else "pid == tid"
    exit_text = fill(_EXIT, LAST=last, EMIT=emit("Q", ["curtask->exit_code"]))
    yield Block(needs("sched_process_exit"), (), exit_text)


OWN_PARENT = "$task->cgroups->dfl_cgrp->self.parent->cgroup->kn->id"
"""The kernel id of the group above the process's cgroup v2 group (0 at the root)."""


def _own_mark(options: ProgramOptions) -> str:
    """``L`` just before a fork or exec record when the process is in ProvArmor's cgroup or
    in a group directly below it, where the lab keeps its machinery (first, so the decoder
    marks the process before it builds that event)."""
    if not options.own_cgroup:
        return ""
    own = f"{options.own_cgroup:d}"
    return f"if (cgroup == {own} || {OWN_PARENT} == {own}) {{ {emit('L', [])} }}\n  "


def _fork_parent_blocks() -> Iterable[Block]:
    """The creator's side of a fork (``J``): the child reports its parent when it first
    runs, and by then an exited creator has been replaced by init or a subreaper. clone
    and clone3 flags are checked at entry (clone3's ``flags`` is the first field of its
    ``struct clone_args``), so a thread creation parks nothing."""
    for syscall in ("fork", "vfork"):
        text = fill(_FORK_PARENT, PROBE=tracepoint("sys_exit_" + syscall), EMIT=emit("J", _CREATED))
        yield Block(needs("sys_exit_" + syscall), (), text)
    body = f"  if (args->ret > 0) {{ {emit('J', _CREATED)} }}"
    for syscall, flags in (
        ("clone", "args->clone_flags"),
        ("clone3", "*(uint64 *)args->uargs"),
    ):
        yield enter_exit(
            syscall,
            park={"@fk": "1"},
            exit_body=body,
            guard=f"(({flags}) & {CLONE_NOT_A_CHILD:#x}) == 0",
        )


# -- files ----------------------------------------------------------------------------------

_OPEN_ENTER = """  $fl = (int64)%FLAGS%;
  $p = (uint64)%PATH%;
  $skip = 0;
  if (($fl & 0x243) == 0) {
%NOISE%
  }"""

_OPEN_EXIT = """  $ret = args->ret;
  $v = @of[tid];
  $fl = $v >> 32;
  if (!($ret == %MISSING% && ($fl & 0x243) == 0)) {
    $fm = (uint64)0;
    if ($ret >= 0) { $fm = (uint64)%FILE%->f_mode; }
    %EMIT%
  }"""


def file_blocks(options: ProgramOptions) -> Iterable[Block]:
    yield from _open_blocks(options)
    unlink = emit("U", ["args->ret", "@ud[tid]", "@uf[tid]"], "str(@up[tid])")
    for syscall, path, dfd, flags in (
        ("unlink", "args->pathname", str(AT_FDCWD), "0"),
        ("unlinkat", "args->pathname", "args->dfd", "args->flag"),
        ("rmdir", "args->pathname", str(AT_FDCWD), "0x200"),
    ):
        park = {"@up": f"(uint64){path}", "@ud": f"(int64){dfd}", "@uf": f"(int64){flags}"}
        yield enter_exit(syscall, park=park, exit_body="  " + unlink)
    yield from _two_path_blocks()
    yield from _attribute_blocks()


def _open_blocks(options: ProgramOptions) -> Iterable[Block]:
    """Opens. Noise (read-only opens under ``noise_prefixes``) is dropped at entry; a
    read-only open that failed with ENOENT is dropped at exit when ``skip_missing_reads``."""
    noise = [f"    {prefix_words('$p', options.noise_prefixes)}"] if options.noise_prefixes else []
    noise += [
        f"    if ({prefix_test(prefix)}) {{ $skip = 1; }}" for prefix in options.noise_prefixes
    ]
    body = fill(
        _OPEN_EXIT,
        MISSING=-2 if options.skip_missing_reads else -100000,  # no syscall returns that
        FILE=file_of("$ret"),
        EMIT=emit("O", ["$ret", "$v & 0xffffffff", "$fl", "$fm"], "str(@op[tid])"),
    )
    for syscall, path, flags, dfd in (
        ("open", "args->filename", "args->flags", str(AT_FDCWD)),
        ("openat", "args->filename", "args->flags", "args->dfd"),
        ("openat2", "args->filename", "*(uint64 *)args->how", "args->dfd"),
        ("creat", "args->pathname", "0x241", str(AT_FDCWD)),
    ):
        prelude = fill(_OPEN_ENTER, FLAGS=flags, PATH=path, NOISE="\n".join(noise))
        # flags and dirfd share one map value (fewer map keys on the 512-byte stack)
        packed = f"($fl << 32) | ((int64){dfd} & 0xffffffff)"
        park = {"@op": "$p", "@of": packed}
        yield enter_exit(syscall, park=park, exit_body=body, guard="$skip == 0", prelude=prelude)


def _two_path_blocks() -> Iterable[Block]:
    rename = "\n".join(
        [
            "  " + emit_string("str(@ro[tid])"),
            "  " + emit("R", ["args->ret", "@rod[tid]", "@rnd[tid]", "@rf[tid]"], "str(@rn[tid])"),
        ]
    )
    cwd = str(AT_FDCWD)
    for syscall, olddfd, newdfd, flags in (
        ("rename", cwd, cwd, "0"),
        ("renameat", "args->olddfd", "args->newdfd", "0"),
        ("renameat2", "args->olddfd", "args->newdfd", "args->flags"),
    ):
        park = {
            "@ro": "(uint64)args->oldname",
            "@rn": "(uint64)args->newname",
            "@rod": f"(int64){olddfd}",
            "@rnd": f"(int64){newdfd}",
            "@rf": f"(int64){flags}",
        }
        yield enter_exit(syscall, park=park, exit_body=rename)
    link = "\n".join(
        [
            "  " + emit_string("str(@lo[tid])"),
            "  " + emit("K", ["args->ret", "@lod[tid]", "@lnd[tid]", "@ls[tid]"], "str(@ln[tid])"),
        ]
    )
    for syscall, olddfd, newdfd, symbolic in (
        ("link", cwd, cwd, "0"),
        ("linkat", "args->olddfd", "args->newdfd", "0"),
        ("symlink", cwd, cwd, "1"),
        ("symlinkat", cwd, "args->newdfd", "1"),
    ):
        park = {
            "@lo": "(uint64)args->oldname",
            "@ln": "(uint64)args->newname",
            "@lod": f"(int64){olddfd}",
            "@lnd": f"(int64){newdfd}",
            "@ls": f"(int64){symbolic}",
        }
        yield enter_exit(syscall, park=park, exit_body=link)


def _attribute_blocks() -> Iterable[Block]:
    cwd = str(AT_FDCWD)
    chmod = "  " + emit("M", ["args->ret", "@md[tid]", "@mm[tid] - 1"], "str(@mp[tid])")
    for syscall, path, dfd in (
        ("chmod", "args->filename", cwd),
        ("fchmod", "0", "args->fd"),
        ("fchmodat", "args->filename", "args->dfd"),
        ("fchmodat2", "args->filename", "args->dfd"),
    ):
        park = {"@mm": "(int64)args->mode + 1", "@mp": f"(uint64){path}", "@md": f"(int64){dfd}"}
        yield enter_exit(syscall, park=park, exit_body=chmod)
    chown = "  " + emit("C", ["args->ret", "@cd[tid]", "@cu[tid] - 1", "@cg[tid]"], "str(@cp[tid])")
    for syscall, path, dfd in (
        ("chown", "args->filename", cwd),
        ("lchown", "args->filename", cwd),
        ("fchown", "0", "args->fd"),
        ("fchownat", "args->filename", "args->dfd"),
    ):
        park = {
            "@cu": "(int64)args->user + 1",
            "@cg": "(int64)args->group",
            "@cp": f"(uint64){path}",
            "@cd": f"(int64){dfd}",
        }
        yield enter_exit(syscall, park=park, exit_body=chown)
    chdir = "  " + emit("H", ["args->ret", "@hd[tid] - 1000"], "str(@hp[tid])")
    for syscall, path, dfd in (("chdir", "args->filename", cwd), ("fchdir", "0", "args->fd")):
        park = {"@hd": f"(int64){dfd} + 1000", "@hp": f"(uint64){path}"}
        yield enter_exit(syscall, park=park, exit_body=chdir)


# -- identity, debugging, modules, memory ---------------------------------------------------


def identity_blocks(options: ProgramOptions) -> Iterable[Block]:
    """setuid/setgid family, ptrace, module loads, memfd_create, executable mappings."""
    yield from _setid_blocks()
    yield from _code_blocks(options)


def _setid_blocks() -> Iterable[Block]:
    for syscall, group, arguments in (
        ("setuid", 0, ("uid",)),
        ("setreuid", 0, ("ruid", "euid")),
        ("setresuid", 0, ("ruid", "euid", "suid")),
        ("setgid", 1, ("gid",)),
        ("setregid", 1, ("rgid", "egid")),
        ("setresgid", 1, ("rgid", "egid", "sgid")),
    ):
        padded = [f"(int64)args->{name}" for name in arguments]
        padded += ["(int64)-1"] * (3 - len(padded))
        which = "gid" if group else "uid"
        body = "  " + emit(
            "T",
            [
                "args->ret",
                str(group),
                "@s0[tid] - 1",
                "@s1[tid]",
                "@s2[tid]",
                f"(int64)curtask->cred->{which}.val",
                f"(int64)curtask->cred->e{which}.val",
            ],
            f'"{syscall}"',
        )
        park = {"@s0": f"{padded[0]} + 1", "@s1": padded[1], "@s2": padded[2]}
        yield enter_exit(syscall, park=park, exit_body=body)


def _code_blocks(options: ProgramOptions) -> Iterable[Block]:
    """Ways to run code: ptrace into a process, load a module, memfd, map a file executable."""
    requests = " || ".join(f"args->request == {value}" for value in options.ptrace_requests)
    yield enter_exit(
        "ptrace",
        park={"@pr": "(int64)args->request + 1", "@pp": "(int64)args->pid"},
        exit_body="  " + emit("P", ["args->ret", "@pr[tid] - 1", "@pp[tid]"]),
        guard=requests or "0",
    )
    yield enter_exit(
        "init_module",
        park={"@yl": "(int64)args->len + 1"},
        exit_body="  " + emit("Y", ["args->ret", "-1", "@yl[tid] - 1"]),
    )
    yield enter_exit(
        "finit_module",
        park={"@yf": "(int64)args->fd + 1"},
        exit_body="  " + emit("Y", ["args->ret", "@yf[tid] - 1", "0"]),
    )
    yield enter_exit(
        "memfd_create",
        park={"@dn": "(uint64)args->uname", "@dl": "(int64)args->flags"},
        exit_body="  " + emit("D", ["args->ret", "@dl[tid]"], "str(@dn[tid])"),
    )
    mmap = "\n".join(
        [
            "  $fd = @wf[tid] - 1;",
            "  $r = (int64)args->ret;",
            "  if ($r > 0 || $r < -4095) { $r = 0; }",
            f"  $f = {file_of('$fd')};",
            "  "
            + emit(
                "W",
                ["$r", "$fd", "@wp[tid]", "(int64)$f->f_inode->i_ino"],
                "str($f->f_path.dentry->d_name.name)",
            ),
        ]
    )
    yield enter_exit(
        "mmap",
        park={"@wf": "(int64)args->fd + 1", "@wp": "(int64)args->prot"},
        exit_body=mmap,
        guard="(args->prot & 4) && !(args->flags & 0x20) && (int64)args->fd >= 0",
    )


_HEARTBEAT = """interval:ms:%FLUSH%
{
  $t = nsecs;
%SWAP%
  %EMIT%
}"""

_SWAP = """  if (@gen == 0) {
    @gen = 1;
%FLUSH0%
  } else {
    @gen = 0;
%FLUSH1%
  }
  clear(@ioseen);"""
"""Swap first, then print and clear the generation the period just filled. ``print`` and
``clear`` run later, in bpftrace's user space, when it reads their request from the ring
buffer (milliseconds, more on a loaded machine): the generation they name must stay idle
until then. Printing the other one and making it current at the same tick (as before)
let a flow that began in that lag lose its first-byte time (printed before it was set) or
its first bytes (cleared after they were added): its first byte then took the flush's
time, later than the file the bytes went to, and a time-respecting trace from that file
missed the socket."""


def flush_io(generation: int, *, margin: str = "    ") -> str:
    """Print one generation's socket maps (times first: the decoder joins them to the byte
    counts that follow) and clear them."""
    names = IO_GENERATIONS[generation]
    return "\n".join(
        [
            *(f"{margin}print({name});" for name in names),
            *(f"{margin}clear({name});" for name in names),
        ]
    )


def heartbeat(options: ProgramOptions) -> Block:
    text = fill(
        _HEARTBEAT,
        FLUSH=options.flush_ms,
        SWAP=fill(_SWAP, FLUSH0=flush_io(0), FLUSH1=flush_io(1)) if socket_io(options) else "",
        EMIT=emit("h", [], start="0").replace("tid, pid", "0, 0"),
    )
    return Block((), ("@gen",) if socket_io(options) else (), text)
