"""Seeding the process table from /proc: parsers on real /proc files, and the clock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provarmor.model.errors import ParseError
from provarmor.model.event import Container
from provarmor.sources import procfs
from provarmor.sources.procfs import ProcClock

WEIRD_COMM = "a) (b c"
"""A process name with the characters that break naive /proc/PID/stat parsing."""


def test_clock_rounds_boottime_down_to_ticks_like_proc() -> None:
    clock = ProcClock(btime=1_700_000_000, clk_tck=100)
    assert clock.ns_per_tick == 10_000_000
    assert clock.start_from_ticks(51778) == 1_700_000_000_000_000_000 + 517_780_000_000
    assert clock.start_from_boottime_ns(517_786_261_490) == clock.start_from_ticks(51778)
    assert clock.start_from_boottime_ns(517_779_999_999) == clock.start_from_ticks(51777)


def test_stat_of_a_process_with_a_hostile_name() -> None:
    code = f"open('/proc/self/comm', 'w').write({WEIRD_COMM!r}); print(1, flush=True); input()"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"1\n"
        text = Path(f"/proc/{child.pid}/stat").read_text()
        stat = procfs.parse_stat(text)
        assert (stat.pid, stat.comm, stat.ppid) == (child.pid, WEIRD_COMM, os.getpid())
        assert stat.start_ticks == int(text.rsplit(")", 1)[1].split()[19])
        assert stat.flags & procfs.PF_KTHREAD == 0
    finally:
        child.communicate(b"\n", timeout=10)


@pytest.mark.parametrize("text", ["", "12 comm R 1", "x (a) R 1 2", "1 (a) R x" + " 0" * 30])
def test_malformed_stat_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        procfs.parse_stat(text)


def test_status_ids_and_cmdline_of_this_process() -> None:
    ids = procfs.parse_status_ids(Path("/proc/self/status").read_text())
    assert ids == (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
    with pytest.raises(ParseError):
        procfs.parse_status_ids("Name:\tx\n")


def test_cmdline_keeps_hostile_arguments() -> None:
    code = "print(1, flush=True); input()"
    child = subprocess.Popen(
        [os.fsencode(sys.executable), b"-c", code.encode(), b"x\ty\nz", b"\xff\xfe", b""],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"1\n"
        args = procfs.parse_cmdline(Path(f"/proc/{child.pid}/cmdline").read_bytes())
    finally:
        child.communicate(b"\n", timeout=10)
    assert args == (sys.executable, "-c", code, "x\ty\nz", "\\xff\\xfe", "")
    assert procfs.parse_cmdline(b"") == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "0::/system.slice/docker-" + "a" * 64 + ".scope\n",
            Container(id="a" * 64, runtime="docker"),
        ),
        ("12:pids:/docker/" + "b" * 64 + "\n", Container(id="b" * 64, runtime="docker")),
        (
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
            "cri-containerd-" + "c" * 64 + ".scope\n",
            Container(id="c" * 64, runtime="containerd"),
        ),
        (
            "0::/kubepods.slice/kubepods-pod2.slice/crio-" + "d" * 64 + ".scope\n",
            Container(id="d" * 64, runtime="cri-o"),
        ),
        (
            "0::/machine.slice/libpod-" + "e" * 64 + ".scope/container\n",
            Container(id="e" * 64, runtime="podman"),
        ),
        (
            "0::/machine.slice/systemd-nspawn@web.service/payload\n",
            Container(id="web", runtime="systemd-nspawn"),
        ),
        (
            "0::/kubepods/besteffort/pod3/" + "f" * 64 + "\n",
            Container(id="f" * 64, runtime="containerd"),
        ),
        ("0::/user.slice/user-0.slice/session-1.scope\n", None),
        ("0::/\n", None),
    ],
)
def test_container_from_cgroup(text: str, expected: Container | None) -> None:
    assert procfs.parse_cgroup(text) == expected


def test_this_host_is_not_in_a_container_and_has_an_identity() -> None:
    assert procfs.parse_cgroup(Path("/proc/self/cgroup").read_text()) is None
    host = procfs.read_host_identity()
    machine_id = Path("/etc/machine-id")
    if machine_id.is_file() and machine_id.read_text().strip():
        assert host.id == machine_id.read_text().strip()
    assert host.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert host.name == os.uname().nodename


def test_btime_and_clock() -> None:
    clock = procfs.read_clock()
    assert clock.clk_tck == os.sysconf("SC_CLK_TCK")
    assert 0 < clock.btime < time.time()
    with pytest.raises(ParseError):
        procfs.parse_btime("cpu 1 2 3\n")


def test_this_process_read_from_proc() -> None:
    clock = procfs.read_clock()
    info = procfs.read_process(os.getpid(), clock=clock)
    assert info is not None
    assert (info.pid, info.ppid) == (os.getpid(), os.getppid())
    assert info.executable == os.readlink("/proc/self/exe")
    assert info.cwd == os.getcwd()
    assert (info.uid, info.euid, info.gid, info.egid) == (
        os.getuid(),
        os.geteuid(),
        os.getgid(),
        os.getegid(),
    )
    assert clock.btime * 1_000_000_000 < info.start < time.time_ns()
    assert info.start == clock.start_from_ticks(info.start_ticks)
    host = procfs.read_host_identity()
    again = procfs.read_process(os.getpid(), clock=clock)
    assert again is not None and again.entity_id(host) == info.entity_id(host)


def test_listing_skips_kernel_threads_and_vanished_processes() -> None:
    clock = procfs.read_clock()
    pids = {info.pid for info in procfs.iter_processes(clock=clock)}
    assert os.getpid() in pids
    assert 2 not in pids  # kthreadd
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert procfs.read_process(gone.pid, clock=clock) is None


@pytest.mark.parametrize(
    ("tty_nr", "name"),
    [
        (0, ""),
        (136 << 8 | 3, "pts3"),
        (137 << 8 | 2, "pts258"),
        (136 << 8 | (300 & 0xFF) | (300 >> 8) << 20, "pts300"),
        (4 << 8 | 1, "tty1"),
        (4 << 8 | 64, "ttyS0"),
        (5 << 8 | 1, "console"),
        (188 << 8 | 0, "tty188:0"),
    ],
)
def test_terminal_names_follow_the_kernels(tty_nr: int, name: str) -> None:
    assert procfs.tty_name(tty_nr) == name


def test_a_process_on_a_pseudo_terminal_carries_its_kernel_name() -> None:
    """A session leader on a pty of its own (``setsid``, then the open makes it the
    controlling terminal)."""
    clock = procfs.read_clock()
    primary, secondary = os.openpty()
    tty_path = os.ttyname(secondary)
    os.close(secondary)
    child = subprocess.Popen(
        ["setsid", sys.executable, "-c", f"import os; os.open({tty_path!r}, os.O_RDWR); input()"],
        stdin=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        info = None
        while time.monotonic() < deadline:
            info = procfs.read_process(child.pid, clock=clock)
            if info is not None and info.tty:
                break
            time.sleep(0.05)
        assert info is not None
        assert info.tty == "pts" + tty_path.rsplit("/", 1)[1]
    finally:
        child.communicate(b"\n", timeout=10)
        os.close(primary)
