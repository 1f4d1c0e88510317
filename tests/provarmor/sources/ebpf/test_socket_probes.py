"""Socket probes (their text; loading them is in test_runner.py)."""

from __future__ import annotations

from provarmor.sources.ebpf.options import ProgramOptions
from provarmor.sources.ebpf.socket_probes import socket_blocks


def _blocks(options: ProgramOptions) -> dict[str, str]:
    return {block.needs[0]: block.text for block in socket_blocks(options)}


def test_connect_and_bind_decode_ip_and_unix_addresses_in_separate_exit_probes() -> None:
    blocks = _blocks(ProgramOptions())
    connect = blocks["syscalls:sys_enter_connect"]
    assert connect.count("tracepoint:syscalls:sys_exit_connect") == 2
    assert "/@cf[tid]/" in connect and "/@cuf[tid]/" in connect
    assert "ntop(2, *(uint32 *)($sa + 4))" in connect
    assert "sin6_addr.in6_u.u6_addr8" in connect
    assert "if (*(uint8 *)($sa + 2) == 0) { $off = 3; }" in connect  # abstract unix name
    assert "str($sa + $off)" in connect
    bind = blocks["syscalls:sys_enter_bind"]
    assert 'printf("s\\t' not in bind  # bind reports its own address only


def test_socket_io_is_summed_in_two_alternating_maps() -> None:
    blocks = _blocks(ProgramOptions())
    read = blocks["syscalls:sys_enter_read"]
    assert "(($f->f_inode->i_mode & 0xf000) == 0xc000)" in read  # S_ISSOCK
    assert "if ($fam == 2 || $fam == 10)" in read
    assert "@io0[pid, curtask->group_leader->start_boottime, $fd, 1] = stats(args->ret);" in read
    assert "@io1[pid, curtask->group_leader->start_boottime, $fd, 1] = stats(args->ret);" in read
    for generation in (0, 1):  # when the flow's first and last byte went
        key = "[pid, curtask->group_leader->start_boottime, $fd, 1]"
        assert f"if (@if{generation}{key} == 0) {{ @if{generation}{key} = $t; }}" in read
        assert f"@il{generation}{key} = max($t);" in read
    write = blocks["syscalls:sys_enter_write"]
    assert "@io0[pid, curtask->group_leader->start_boottime, $fd, 0]" in write
    assert "if (@ioseen[pid, $fd] == 0)" in write  # both ends once per period
    assert "syscalls:sys_enter_read" not in _blocks(ProgramOptions(socket_io=False))
