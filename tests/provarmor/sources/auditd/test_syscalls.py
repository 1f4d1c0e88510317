from __future__ import annotations

import pytest

from provarmor.sources.auditd.syscalls import (
    ARCH_AARCH64,
    ARCH_I386,
    ARCH_X86_64,
    NUMBERS,
    syscall_name,
)


@pytest.mark.parametrize(
    ("arch", "number", "name"),
    [
        (ARCH_X86_64, "59", "execve"),
        (ARCH_X86_64, "257", "openat"),
        (ARCH_X86_64, "435", "clone3"),
        (ARCH_X86_64, "452", "fchmodat2"),
        (ARCH_AARCH64, "221", "execve"),
        (ARCH_AARCH64, "56", "openat"),
        (ARCH_I386, "11", "execve"),
        ("C000003E", "42", "connect"),
    ],
)
def test_syscall_names(arch, number, name):
    assert syscall_name(arch, number) == name


def test_unknown_numbers_and_architectures():
    assert syscall_name(ARCH_X86_64, "9999") == "unknown(9999)"
    assert syscall_name(ARCH_X86_64, "x1") == "unknown(x1)"
    assert syscall_name("deadbeef", "59") == "execve"  # falls back to x86_64


def test_aarch64_has_no_legacy_calls():
    assert "open" not in NUMBERS[ARCH_AARCH64]
    assert "fork" not in NUMBERS[ARCH_AARCH64]
    assert NUMBERS[ARCH_X86_64]["open"] == 2
