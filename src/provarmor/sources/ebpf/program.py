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
* Process identity: every record carries ``curtask->group_leader->start_boottime`` (ns since
  boot, counting suspend). ``/proc/PID/stat`` field 22 is the same value in clock ticks,
  rounded down, so the decoder rounds the ns down to ticks too and both sides compute the
  same start time (see :func:`provarmor.sources.procfs.ProcClock.start_from_boottime_ns`).
* Socket traffic is summed in the kernel per ``(pid, start, fd, direction)`` with
  ``stats()`` and printed once per flush period. Two maps take turns (``@gen``): the one
  printed has been idle for a whole period, so no update is lost between print and clear.
* Failed read-only opens of missing files (``ENOENT``) and read-only opens under
  ``noise_prefixes`` are dropped in the kernel; everything else is reported, failures too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from provarmor.sources.ebpf.wire import COMMON_FIELDS, LAYOUTS

START = "curtask->group_leader->start_boottime"
EXCLUDED_PID_SLOTS = 4
"""Positional parameters ``$1``..``$4``: pids never traced. ``$5`` is bpftrace itself."""
FILTER = " && ".join(f"pid != ${slot}" for slot in range(1, EXCLUDED_PID_SLOTS + 2))
DEFAULT_NOISE_PREFIXES = ("/dev/null", "/dev/urandom", "/proc/self/", "/sys/devices/system/cpu/")
PTRACE_REQUESTS = (0, 4, 5, 6, 13, 16, 0x4206)
"""TRACEME, POKETEXT, POKEDATA, POKEUSER, SETREGS, ATTACH, SEIZE: the requests that take
control of or write into another process (reads such as PEEKDATA are not reported)."""

FAMILIES = ("process", "file", "network", "identity")
"""Groups of probes: exec/fork/exit; file syscalls; sockets; and the rest (setuid/setgid,
ptrace, module loads, memfd_create, executable file mappings)."""
_AT_FDCWD = -100
_TAB = "\\t"


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


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelFeatures:
    """What this kernel offers: tracepoint names (``group:name``) and format details."""

    tracepoints: frozenset[str]
    exit_has_group_dead: bool = True


@dataclass(frozen=True, slots=True)
class _Block:
    needs: tuple[str, ...]
    maps: tuple[str, ...]
    text: str


@dataclass(slots=True)
class _Program:
    features: KernelFeatures
    blocks: list[str] = field(default_factory=list)
    maps: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)

    def add(self, block: _Block) -> None:
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
    io_maps = ("@io0", "@io1") if _socket_io(options) else ()
    end = ["END", "{"]
    end += [f"  print({name});" for name in io_maps]
    end += [f"  clear({name});" for name in sorted(program.maps)]
    end += ["  $t = nsecs;", "  " + emit("e", [], start="0").replace("tid, pid", "0, 0"), "}"]
    return "\n\n".join([*program.blocks, "\n".join(end)]) + "\n"


def skipped_tracepoints(options: ProgramOptions, features: KernelFeatures) -> list[str]:
    """Tracepoints the program would use but this kernel lacks (their probes are left out)."""
    program = _Program(features)
    for block in _all_blocks(options, features):
        program.add(block)
    return sorted(set(program.skipped))


def _all_blocks(options: ProgramOptions, features: KernelFeatures) -> Iterable[_Block]:
    begin = emit("b", [], start="0").replace("tid, pid", "0, 0")
    yield _Block((), (), f"BEGIN\n{{\n  $t = nsecs;\n  {begin}\n}}")
    unknown = set(options.families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown probe families {sorted(unknown)}; known: {FAMILIES}")
    if "process" in options.families:
        yield from _process_blocks(options, features)
    if "file" in options.families:
        yield from _file_blocks(options)
    if "network" in options.families:
        yield from _socket_blocks(options)
    if "identity" in options.families:
        yield from _identity_blocks(options)
    yield _heartbeat(options)


# -- text helpers ---------------------------------------------------------------------------


def _fill(template: str, **tokens: object) -> str:
    """Replace ``%NAME%`` tokens (bpftrace itself uses ``$`` and braces)."""
    text = template
    for name, value in tokens.items():
        text = text.replace(f"%{name}%", str(value))
    return text.replace("%FILTER%", FILTER).replace("%START%", START)


def emit(kind: str, values: Sequence[str], text: str = '""', *, start: str = START) -> str:
    """A ``printf`` of one header line of ``kind`` (fields in :data:`LAYOUTS` order)."""
    layout = LAYOUTS[kind]
    if len(values) != len(layout):
        raise ValueError(f"{kind} takes {len(layout)} values, got {len(values)}")
    formats = [kind, "%lu", "%d", "%d", "%lu", *(["%ld"] * len(values)), "%s"]
    assert len(formats) == 2 + len(COMMON_FIELDS) + len(layout)
    arguments = ", ".join(["$t", "tid", "pid", start, *values, text])
    return f'printf("{_TAB.join(formats)}\\n", {arguments});'


def emit_string(text: str) -> str:
    """A ``printf`` of one ``s`` line belonging to the header printed next in this probe."""
    return f'printf("s\\t%d\\t%lu\\t%s\\n", tid, $t, {text});'


def _file_of(fd: str) -> str:
    return f"(*(curtask->files->fdt->fd + {fd}))"


def _sock_of(fd: str) -> str:
    return f"((struct socket *){_file_of(fd)}->private_data)->sk"


def _tracepoint(name: str) -> str:
    group = "sched" if name.startswith("sched_") else "syscalls"
    return f"tracepoint:{group}:{name}"


def _needs(*names: str) -> tuple[str, ...]:
    return tuple(_tracepoint(name).removeprefix("tracepoint:") for name in names)


def _enter_exit(syscall: str, *, park: dict[str, str], exit_body: str, guard: str = "") -> _Block:
    """A ``sys_enter`` probe parking ``park`` (map -> expression) and its ``sys_exit`` probe.

    The first map parked is the exit probe's predicate, so it must never hold 0.
    """
    maps = tuple(park)
    stores = "\n".join(f"  {name}[tid] = {value};" for name, value in park.items())
    if guard:
        stores = f"  if ({guard}) {{\n{stores}\n  }}"
    deletes = "\n".join(f"  delete({name}[tid]);" for name in maps)
    text = (
        f"{_tracepoint('sys_enter_' + syscall)} /{FILTER}/\n{{\n{stores}\n}}\n\n"
        f"{_tracepoint('sys_exit_' + syscall)} /{maps[0]}[tid]/\n{{\n  $t = nsecs;\n"
        f"{exit_body}\n{deletes}\n}}"
    )
    return _Block(_needs("sys_enter_" + syscall, "sys_exit_" + syscall), maps, text)


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

_EXIT = """tracepoint:sched:sched_process_exit /%FILTER% && %LAST%/
{
  $t = nsecs;
  %EMIT%
}"""


def _process_blocks(options: ProgramOptions, features: KernelFeatures) -> Iterable[_Block]:
    for syscall in ("execve", "execveat"):
        text = _fill(
            _ARGV,
            PROBE=_tracepoint("sys_enter_" + syscall),
            EXIT=_tracepoint("sys_exit_" + syscall),
            MAX=options.max_args,
            STRING=emit_string("str($p)"),
            EMIT=emit("V", ["$i", "$more"]),
            FAILED=emit("X", ["args->ret"], "str(@xf[tid])"),
        )
        yield _Block(_needs("sys_enter_" + syscall, "sys_exit_" + syscall), ("@xf",), text)
    credentials = [
        "$task->real_parent->tgid",
        "$task->real_parent->group_leader->start_boottime",
        "$task->cred->uid.val",
        "$task->cred->euid.val",
        "$task->cred->gid.val",
        "$task->cred->egid.val",
    ]
    cwd_text = _fill(
        _CWD,
        MOUNT_OFFSET=options.mount_offset,
        STEPS=options.max_cwd_steps,
        STRING=emit_string("str($d->d_name.name)"),
        EMIT=emit("Z", ["$complete"]),
    )
    yield _Block(_needs("sched_process_exec"), (), cwd_text)
    exec_text = _fill(_EXEC, EMIT=emit("E", ["args->old_pid", *credentials], "str(args->filename)"))
    yield _Block(_needs("sched_process_exec"), ("@xf",), exec_text)
    for syscall in ("fork", "vfork", "clone", "clone3"):
        text = _fill(
            _FORK, PROBE=_tracepoint("sys_exit_" + syscall), EMIT=emit("F", credentials, "comm")
        )
        yield _Block(_needs("sys_exit_" + syscall), (), text)
    last = "args->group_dead" if features.exit_has_group_dead else "pid == tid"
    exit_text = _fill(_EXIT, LAST=last, EMIT=emit("Q", ["curtask->exit_code"]))
    yield _Block(_needs("sched_process_exit"), (), exit_text)


# -- files ----------------------------------------------------------------------------------

_OPEN_EXIT = """  $ret = args->ret;
  $fl = @of[tid];
  $p = @op[tid];
  $skip = 0;
  if (($fl & 0x243) == 0) {
%NOISE%
  }
  if ($skip == 0) {
    $fm = (uint64)0;
    if ($ret >= 0) { $fm = (uint64)%FILE%->f_mode; }
    %EMIT%
  }"""


def _file_blocks(options: ProgramOptions) -> Iterable[_Block]:
    yield from _open_blocks(options)
    unlink = emit("U", ["args->ret", "@ud[tid]", "@uf[tid]"], "str(@up[tid])")
    for syscall, path, dfd, flags in (
        ("unlink", "args->pathname", str(_AT_FDCWD), "0"),
        ("unlinkat", "args->pathname", "args->dfd", "args->flag"),
        ("rmdir", "args->pathname", str(_AT_FDCWD), "0x200"),
    ):
        park = {"@up": f"(uint64){path}", "@ud": f"(int64){dfd}", "@uf": f"(int64){flags}"}
        yield _enter_exit(syscall, park=park, exit_body="  " + unlink)
    yield from _two_path_blocks()
    yield from _attribute_blocks()


def _open_blocks(options: ProgramOptions) -> Iterable[_Block]:
    noise = [
        f"    if ({prefix_test('$p', prefix)}) {{ $skip = 1; }}"
        for prefix in options.noise_prefixes
    ]
    if options.skip_missing_reads:
        noise.append("    if ($ret == -2) { $skip = 1; }")
    body = _fill(
        _OPEN_EXIT,
        NOISE="\n".join(noise) or "    $skip = 0;",
        FILE=_file_of("$ret"),
        EMIT=emit("O", ["$ret", "@od[tid]", "$fl", "$fm"], "str($p)"),
    )
    for syscall, path, flags, dfd in (
        ("open", "args->filename", "args->flags", str(_AT_FDCWD)),
        ("openat", "args->filename", "args->flags", "args->dfd"),
        ("openat2", "args->filename", "*(uint64 *)args->how", "args->dfd"),
        ("creat", "args->pathname", "0x241", str(_AT_FDCWD)),
    ):
        park = {"@op": f"(uint64){path}", "@of": f"(int64){flags}", "@od": f"(int64){dfd}"}
        yield _enter_exit(syscall, park=park, exit_body=body)


def prefix_test(pointer: str, prefix: str) -> str:
    """A test that the user string at ``pointer`` starts with ``prefix``, comparing 8 bytes
    at a time as integers (bpftrace 0.17 puts string literals on the 512-byte stack)."""
    data = prefix.encode()
    if not data:
        return "1"
    tests = []
    for offset in range(0, len(data), 8):
        chunk = data[offset : offset + 8]
        value = int.from_bytes(chunk, "little")
        word = f"*(uint64 *)({pointer} + {offset})"
        if len(chunk) < 8:
            word = f"({word} & {(1 << (8 * len(chunk))) - 1:#x})"
        tests.append(f"{word} == {value:#x}")
    return " && ".join(tests)


def _two_path_blocks() -> Iterable[_Block]:
    rename = "\n".join(
        [
            "  " + emit_string("str(@ro[tid])"),
            "  " + emit("R", ["args->ret", "@rod[tid]", "@rnd[tid]", "@rf[tid]"], "str(@rn[tid])"),
        ]
    )
    cwd = str(_AT_FDCWD)
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
        yield _enter_exit(syscall, park=park, exit_body=rename)
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
        yield _enter_exit(syscall, park=park, exit_body=link)


def _attribute_blocks() -> Iterable[_Block]:
    cwd = str(_AT_FDCWD)
    chmod = "  " + emit("M", ["args->ret", "@md[tid]", "@mm[tid] - 1"], "str(@mp[tid])")
    for syscall, path, dfd in (
        ("chmod", "args->filename", cwd),
        ("fchmod", "0", "args->fd"),
        ("fchmodat", "args->filename", "args->dfd"),
        ("fchmodat2", "args->filename", "args->dfd"),
    ):
        park = {"@mm": "(int64)args->mode + 1", "@mp": f"(uint64){path}", "@md": f"(int64){dfd}"}
        yield _enter_exit(syscall, park=park, exit_body=chmod)
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
        yield _enter_exit(syscall, park=park, exit_body=chown)
    chdir = "  " + emit("H", ["args->ret", "@hd[tid] - 1000"], "str(@hp[tid])")
    for syscall, path, dfd in (("chdir", "args->filename", cwd), ("fchdir", "0", "args->fd")):
        park = {"@hd": f"(int64){dfd} + 1000", "@hp": f"(uint64){path}"}
        yield _enter_exit(syscall, park=park, exit_body=chdir)


# -- sockets --------------------------------------------------------------------------------

_SOCKADDR = """%ENTER% /%FILTER%/
{
  $fam = *(uint16 *)args->%ADDR%;
  if ($fam == 2 || $fam == 10) {
    %MAP%f[tid] = (int64)args->fd + 1;
    %MAP%a[tid] = (uint64)args->%ADDR%;
  } else if ($fam == 1) {
    %MAP%uf[tid] = (int64)args->fd + 1;
    %MAP%ua[tid] = (uint64)args->%ADDR%;
  }
}

%EXIT% /%MAP%f[tid]/
{
  $t = nsecs;
  $sa = %MAP%a[tid];
  $fd = %MAP%f[tid] - 1;
  $port = (*(uint8 *)($sa + 2) << 8) | *(uint8 *)($sa + 3);
  $sk = %SOCK%;
  $proto = (int64)$sk->sk_protocol;
  $lport = (int64)$sk->__sk_common.skc_num & 0xffff;
  if (*(uint16 *)$sa == 2) {
    $fam = 2;
%V4%
  } else {
    $fam = 10;
%V6%
  }
  delete(%MAP%f[tid]);
  delete(%MAP%a[tid]);
}

%EXIT% /%MAP%uf[tid]/
{
  $t = nsecs;
  $sa = %MAP%ua[tid];
  $fd = %MAP%uf[tid] - 1;
  $fam = 1;
  $proto = 0;
  $lport = 0;
  $off = (int64)2;
  if (*(uint8 *)($sa + 2) == 0) { $off = 3; }
%UNIX%
  delete(%MAP%uf[tid]);
  delete(%MAP%ua[tid]);
}"""

_PEER = """  if ($fam == 2) {
    %LOCAL4%
    %V4%
  } else if ($fam == 10) {
    %LOCAL6%
    %V6%
  } else {
    %LOCALX%
    %OTHER%
  }"""


def _sockaddr_block(  # noqa: PLR0913  (one probe family, all keyword-only)
    syscall: str, *, address: str, prefix: str, kind: str, values: Sequence[str], local: bool
) -> _Block:
    """connect/bind: the parked ``struct sockaddr`` is decoded in the kernel. IP and unix
    addresses go to separate exit probes (each fits the 512-byte stack on its own)."""

    def branch(text: str, local_ip: str = "", port: str = "$port") -> str:
        lines = [emit_string(local_ip)] if local and local_ip else []
        lines.append(emit(kind, [*values[:3], port, *values[3:]], text))
        return "\n".join("    " + line for line in lines)

    text = _fill(
        _SOCKADDR,
        ENTER=_tracepoint("sys_enter_" + syscall),
        EXIT=_tracepoint("sys_exit_" + syscall),
        ADDR=address,
        MAP=prefix,
        SOCK=_sock_of("$fd"),
        V4=branch("ntop(2, *(uint32 *)($sa + 4))", "ntop(2, $sk->__sk_common.skc_rcv_saddr)"),
        V6=branch(
            "ntop(10, ((struct sockaddr_in6 *)$sa)->sin6_addr.in6_u.u6_addr8)",
            "ntop(10, $sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8)",
        ),
        UNIX=branch("str($sa + $off)", port="$off - 2"),
    )
    maps = tuple(f"{prefix}{suffix}" for suffix in ("f", "a", "uf", "ua"))
    return _Block(_needs("sys_enter_" + syscall, "sys_exit_" + syscall), maps, text)


def _peer(kind: str, values: Sequence[str], sock: str) -> str:
    """Body reporting both ends of a connected socket ``sock`` (accept, first send/recv)."""
    return "\n".join(
        [
            f"  $sk = {sock};",
            "  $fam = (int64)$sk->__sk_common.skc_family;",
            "  $proto = (int64)$sk->sk_protocol;",
            "  $lport = (int64)$sk->__sk_common.skc_num & 0xffff;",
            "  $dport = (int64)$sk->__sk_common.skc_dport & 0xffff;",
            "  $rport = (($dport & 0xff) << 8) | (($dport >> 8) & 0xff);",
            _fill(
                _PEER,
                LOCAL4=emit_string("ntop(2, $sk->__sk_common.skc_rcv_saddr)"),
                V4=emit(kind, values, "ntop(2, $sk->__sk_common.skc_daddr)"),
                LOCAL6=emit_string("ntop(10, $sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8)"),
                V6=emit(kind, values, "ntop(10, $sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8)"),
                LOCALX=emit_string('""'),
                OTHER=emit(kind, values, '""'),
            ),
        ]
    )


def _socket_blocks(options: ProgramOptions) -> Iterable[_Block]:
    yield _sockaddr_block(
        "connect",
        address="uservaddr",
        prefix="@c",
        kind="N",
        values=["args->ret", "$fd", "$fam", "$proto", "$lport"],
        local=True,
    )
    yield _sockaddr_block(
        "bind",
        address="umyaddr",
        prefix="@b",
        kind="B",
        values=["args->ret", "$fd", "$fam", "$proto"],
        local=False,
    )
    values = ["args->ret", "@af[tid] - 1", "$fam", "$proto", "$lport", "$rport"]
    accept = _peer("A", values, _sock_of("args->ret"))
    accept = "  if (args->ret >= 0) {\n" + _indent(accept) + "\n  }"
    for syscall in ("accept", "accept4"):
        yield _enter_exit(syscall, park={"@af": "(int64)args->fd + 1"}, exit_body=accept)
    park = {"@lf": "(int64)args->fd + 1", "@lb": "(int64)args->backlog"}
    yield _enter_exit("listen", park=park, exit_body=_listen_exit())
    if _socket_io(options):
        yield from _io_blocks()


def _listen_exit() -> str:
    values = ["args->ret", "@lf[tid] - 1", "@lb[tid]", "$fam", "$proto", "$lport"]
    return _fill(
        _LISTEN,
        SOCK=_sock_of("@lf[tid] - 1"),
        V6=emit("G", values, "ntop(10, $sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8)"),
        V4=emit("G", values, "ntop(2, $sk->__sk_common.skc_rcv_saddr)"),
        OTHER=emit("G", values),
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


_LISTEN = """  $sk = %SOCK%;
  $fam = (int64)$sk->__sk_common.skc_family;
  $proto = (int64)$sk->sk_protocol;
  $lport = (int64)$sk->__sk_common.skc_num & 0xffff;
  if ($fam == 10) {
    %V6%
  } else if ($fam == 2) {
    %V4%
  } else {
    %OTHER%
  }"""

_IO_ENTER = """  $fdt = curtask->files->fdt;
  if (args->fd < $fdt->max_fds) {
    $f = *($fdt->fd + args->fd);
    if ($f != 0) {
      if (($f->f_inode->i_mode & 0xf000) == 0xc000) {
        $fam = ((struct socket *)$f->private_data)->sk->__sk_common.skc_family;
        if ($fam == 2 || $fam == 10) { @iofd[tid] = (int64)args->fd + 1; }
      }
    }
  }"""

_IO_EXIT = """  if (args->ret > 0) {
    $fd = @iofd[tid] - 1;
    if (@ioseen[pid, $fd] == 0) {
      @ioseen[pid, $fd] = 1;
%PEER%
    }
    if (@gen == 0) {
      @io0[pid, %START%, $fd, %DIRECTION%] = stats(args->ret);
    } else {
      @io1[pid, %START%, $fd, %DIRECTION%] = stats(args->ret);
    }
  }
  delete(@iofd[tid]);"""


def _io_blocks() -> Iterable[_Block]:
    peer = _indent(
        _indent(_peer("S", ["$fd", "$fam", "$proto", "$lport", "$rport"], _sock_of("$fd")))
    )
    for direction, syscalls in (
        (0, ("write", "writev", "sendto", "sendmsg")),
        (1, ("read", "readv", "recvfrom", "recvmsg")),
    ):
        for syscall in syscalls:
            text = (
                f"{_tracepoint('sys_enter_' + syscall)} /{FILTER}/\n{{\n{_IO_ENTER}\n}}\n\n"
                f"{_tracepoint('sys_exit_' + syscall)} /@iofd[tid]/\n{{\n  $t = nsecs;\n"
                + _fill(_IO_EXIT, PEER=peer, DIRECTION=direction)
                + "\n}"
            )
            needs = _needs("sys_enter_" + syscall, "sys_exit_" + syscall)
            yield _Block(needs, ("@iofd", "@ioseen", "@io0", "@io1"), text)


# -- identity, debugging, modules, memory ---------------------------------------------------


def _identity_blocks(options: ProgramOptions) -> Iterable[_Block]:
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
        yield _enter_exit(syscall, park=park, exit_body=body)
    requests = " || ".join(f"args->request == {value}" for value in options.ptrace_requests)
    yield _enter_exit(
        "ptrace",
        park={"@pr": "(int64)args->request + 1", "@pp": "(int64)args->pid"},
        exit_body="  " + emit("P", ["args->ret", "@pr[tid] - 1", "@pp[tid]"]),
        guard=requests or "0",
    )
    yield _enter_exit(
        "init_module",
        park={"@yl": "(int64)args->len + 1"},
        exit_body="  " + emit("Y", ["args->ret", "-1", "@yl[tid] - 1"]),
    )
    yield _enter_exit(
        "finit_module",
        park={"@yf": "(int64)args->fd + 1"},
        exit_body="  " + emit("Y", ["args->ret", "@yf[tid] - 1", "0"]),
    )
    yield _enter_exit(
        "memfd_create",
        park={"@dn": "(uint64)args->uname", "@dl": "(int64)args->flags"},
        exit_body="  " + emit("D", ["args->ret", "@dl[tid]"], "str(@dn[tid])"),
    )
    mmap = "\n".join(
        [
            "  $fd = @wf[tid] - 1;",
            "  $r = (int64)args->ret;",
            "  if ($r > 0 || $r < -4095) { $r = 0; }",
            f"  $f = {_file_of('$fd')};",
            "  "
            + emit(
                "W",
                ["$r", "$fd", "@wp[tid]", "(int64)$f->f_inode->i_ino"],
                "str($f->f_path.dentry->d_name.name)",
            ),
        ]
    )
    yield _enter_exit(
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
    print(@io1);
    clear(@io1);
    @gen = 1;
  } else {
    print(@io0);
    clear(@io0);
    @gen = 0;
  }
  clear(@ioseen);"""


def _heartbeat(options: ProgramOptions) -> _Block:
    text = _fill(
        _HEARTBEAT,
        FLUSH=options.flush_ms,
        SWAP=_SWAP if _socket_io(options) else "",
        EMIT=emit("h", [], start="0").replace("tid, pid", "0, 0"),
    )
    return _Block((), ("@gen",) if _socket_io(options) else (), text)


def _socket_io(options: ProgramOptions) -> bool:
    return options.socket_io and "network" in options.families
