"""The socket probes of the bpftrace program: connect/bind (the ``struct sockaddr`` decoded in
the kernel), accept/listen (both ends read from the socket), and read/write/send/recv on
IPv4/IPv6 sockets summed per ``(pid, start, fd, direction)`` in two alternating generations
of maps: calls and bytes (``stats``), and the record time of the first and the last byte,
so an aggregated flow keeps when it happened, not when it was flushed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from provarmor.sources.ebpf.bpftext import (
    FILTER,
    Block,
    emit,
    emit_string,
    enter_exit,
    fill,
    indent,
    needs,
    sock_of,
    tracepoint,
)
from provarmor.sources.ebpf.options import ProgramOptions, socket_io
from provarmor.sources.ebpf.wire import IO_GENERATIONS

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
) -> Block:
    """connect/bind: the parked ``struct sockaddr`` is decoded in the kernel. IP and unix
    addresses go to separate exit probes (each fits the 512-byte stack on its own)."""

    def branch(text: str, local_ip: str = "", port: str = "$port") -> str:
        lines = [emit_string(local_ip)] if local and local_ip else []
        lines.append(emit(kind, [*values[:3], port, *values[3:]], text))
        return "\n".join("    " + line for line in lines)

    text = fill(
        _SOCKADDR,
        ENTER=tracepoint("sys_enter_" + syscall),
        EXIT=tracepoint("sys_exit_" + syscall),
        ADDR=address,
        MAP=prefix,
        SOCK=sock_of("$fd"),
        V4=branch("ntop(2, *(uint32 *)($sa + 4))", "ntop(2, $sk->__sk_common.skc_rcv_saddr)"),
        V6=branch(
            "ntop(10, ((struct sockaddr_in6 *)$sa)->sin6_addr.in6_u.u6_addr8)",
            "ntop(10, $sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8)",
        ),
        UNIX=branch("str($sa + $off)", port="$off - 2"),
    )
    maps = tuple(f"{prefix}{suffix}" for suffix in ("f", "a", "uf", "ua"))
    return Block(needs("sys_enter_" + syscall, "sys_exit_" + syscall), maps, text)


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
            fill(
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


def socket_blocks(options: ProgramOptions) -> Iterable[Block]:
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
    accept = _peer("A", values, sock_of("args->ret"))
    accept = "  if (args->ret >= 0) {\n" + indent(accept) + "\n  }"
    for syscall in ("accept", "accept4"):
        yield enter_exit(syscall, park={"@af": "(int64)args->fd + 1"}, exit_body=accept)
    park = {"@lf": "(int64)args->fd + 1", "@lb": "(int64)args->backlog"}
    yield enter_exit("listen", park=park, exit_body=_listen_exit())
    if socket_io(options):
        yield from _io_blocks()


def _listen_exit() -> str:
    values = ["args->ret", "@lf[tid] - 1", "@lb[tid]", "$fam", "$proto", "$lport"]
    return fill(
        _LISTEN,
        SOCK=sock_of("@lf[tid] - 1"),
        V6=emit("G", values, "ntop(10, $sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8)"),
        V4=emit("G", values, "ntop(2, $sk->__sk_common.skc_rcv_saddr)"),
        OTHER=emit("G", values),
    )


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
%GEN0%
    } else {
%GEN1%
    }
  }
  delete(@iofd[tid]);"""


def _io_updates(generation: int, direction: int) -> str:
    """Bytes and calls, the first byte's time (set once: bpftrace 0.17 prints a ``min`` map
    of ``nsecs`` values as empty) and the last byte's (``max``)."""
    first, last, totals = IO_GENERATIONS[generation]
    key = f"[pid, %START%, $fd, {direction}]"
    return "\n".join(
        [
            f"      {totals}{key} = stats(args->ret);",
            f"      if ({first}{key} == 0) {{ {first}{key} = $t; }}",
            f"      {last}{key} = max($t);",
        ]
    )


def _io_blocks() -> Iterable[Block]:
    peer = indent(indent(_peer("S", ["$fd", "$fam", "$proto", "$lport", "$rport"], sock_of("$fd"))))
    maps = ("@iofd", "@ioseen", *(name for names in IO_GENERATIONS for name in names))
    for direction, syscalls in (
        (0, ("write", "writev", "sendto", "sendmsg")),
        (1, ("read", "readv", "recvfrom", "recvmsg")),
    ):
        for syscall in syscalls:
            text = (
                f"{tracepoint('sys_enter_' + syscall)} /{FILTER}/\n{{\n{_IO_ENTER}\n}}\n\n"
                f"{tracepoint('sys_exit_' + syscall)} /@iofd[tid]/\n{{\n  $t = nsecs;\n"
                + fill(
                    _IO_EXIT,
                    PEER=peer,
                    GEN0=_io_updates(0, direction),
                    GEN1=_io_updates(1, direction),
                )
                + "\n}"
            )
            required = needs("sys_enter_" + syscall, "sys_exit_" + syscall)
            yield Block(required, maps, text)
