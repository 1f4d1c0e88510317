import os
import subprocess
import time

from provarmor.lab.proc import (
    boot_id,
    boot_time_ns,
    host_name,
    process_executable,
    process_start_ns,
)


def test_a_fresh_process_started_about_now():
    child = subprocess.Popen(["sleep", "2"])
    try:
        started = process_start_ns(child.pid)
        assert abs(started - time.time_ns()) < 2_000_000_000
        assert process_executable(child.pid).endswith("sleep")
    finally:
        child.kill()
        child.wait()


def test_machine_facts():
    assert boot_time_ns() < time.time_ns()
    assert len(boot_id()) == 36 and host_name()
    assert process_start_ns(2**22 + 17) == 0
    assert process_start_ns(os.getpid()) >= boot_time_ns()
