"""Text building blocks of the bpftrace program."""

from __future__ import annotations

import pytest

from provarmor.sources.ebpf.bpftext import (
    FILTER,
    emit,
    emit_string,
    enter_exit,
    indent,
    prefix_test,
    prefix_words,
    sock_of,
)


def test_filter_excludes_four_slots_and_bpftrace_itself() -> None:
    assert FILTER == "pid != $1 && pid != $2 && pid != $3 && pid != $4 && pid != $5"


def test_emit_follows_the_wire_layout() -> None:
    printf = (
        'printf("Q\\t%lu\\t%d\\t%d\\t%lu\\t%ld\\t%s\\n", $t, tid, pid, '
        'curtask->group_leader->start_boottime, curtask->exit_code, "");'
    )
    assert emit("Q", ["curtask->exit_code"]) == printf + " @records = count();"
    assert emit("Q", ["curtask->exit_code"], counted=False) == printf
    assert emit_string("str($p)") == (
        'printf("s\\t%d\\t%lu\\t%s\\n", tid, $t, str($p)); @records = count();'
    )
    with pytest.raises(ValueError, match="takes 1 values"):
        emit("Q", [])


def test_prefix_test_compares_little_endian_words_read_once() -> None:
    assert prefix_words("$p", ["/dev/null", "/proc/"]) == (
        "$w0 = *(uint64 *)($p + 0); $w1 = *(uint64 *)($p + 8);"
    )
    assert prefix_words("$p", []) == ""
    assert prefix_test("/dev/null") == "$w0 == 0x6c756e2f7665642f && ($w1 & 0xff) == 0x6c"
    assert int.from_bytes(b"/dev/nul", "little") == 0x6C756E2F7665642F
    assert prefix_test("/proc/se") == "$w0 == 0x65732f636f72702f"
    assert prefix_test("") == "1"


def test_enter_exit_parks_arguments_per_thread() -> None:
    block = enter_exit(
        "chdir",
        park={"@hd": "(int64)-100 + 1000", "@hp": "(uint64)args->filename"},
        exit_body="  EXIT;",
        guard="args->filename != 0",
        prelude="  $x = 1;",
    )
    assert block.needs == ("syscalls:sys_enter_chdir", "syscalls:sys_exit_chdir")
    assert block.maps == ("@hd", "@hp")
    assert f"tracepoint:syscalls:sys_enter_chdir /{FILTER}/" in block.text
    assert (
        "{\n  $x = 1;\n  if (args->filename != 0) {\n  @hd[tid] = (int64)-100 + 1000;" in block.text
    )
    assert "tracepoint:syscalls:sys_exit_chdir /@hd[tid]/" in block.text
    assert block.text.endswith("  EXIT;\n  delete(@hd[tid]);\n  delete(@hp[tid]);\n}")


def test_socket_path_and_indent() -> None:
    assert sock_of("$fd") == (
        "((struct socket *)(*(curtask->files->fdt->fd + $fd))->private_data)->sk"
    )
    assert indent("a\nb") == "  a\n  b"
