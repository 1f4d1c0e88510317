"""Prerequisite checks and kernel feature detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provarmor.sources.ebpf.kernel import (
    TRACEFS,
    EbpfUnavailable,
    bpftrace_version,
    check_prerequisites,
    detect_features,
)


def test_every_missing_piece_is_named(tmp_path: Path) -> None:
    with pytest.raises(EbpfUnavailable) as error:
        check_prerequisites(bpftrace="no-such-bpftrace-binary", btf=tmp_path / "vmlinux")
    message = str(error.value)
    assert "no-such-bpftrace-binary" in message
    assert str(tmp_path / "vmlinux") in message
    if os.geteuid() != 0:
        assert "root" in message


def test_features_of_a_fake_tracefs(tmp_path: Path) -> None:
    for name in ("syscalls/sys_enter_openat", "sched/sched_process_exit", "irq/irq_handler"):
        (tmp_path / "events" / name).mkdir(parents=True)
    (tmp_path / "events/sched/sched_process_exit/format").write_text(
        "field:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n"
    )
    features = detect_features(tmp_path)
    assert features.tracepoints == {"syscalls:sys_enter_openat", "sched:sched_process_exit"}
    assert features.exit_has_group_dead
    (tmp_path / "events/sched/sched_process_exit/format").write_text("field:int prio;\n")
    assert not detect_features(tmp_path).exit_has_group_dead


@pytest.mark.privileged
def test_this_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to read tracefs")
    try:
        binary = check_prerequisites(bpftrace="bpftrace")
    except EbpfUnavailable as exc:
        pytest.skip(str(exc))
    assert bpftrace_version(binary).startswith("bpftrace v")
    features = detect_features(TRACEFS)
    for name in (
        "sched:sched_process_exec",
        "syscalls:sys_enter_execve",
        "syscalls:sys_exit_openat",
    ):
        assert name in features.tracepoints
