"""The eBPF sensor behind the LiveSensor seam: what a host without bpftrace is told, and a
real command seen by this machine's kernel."""

import os
import shutil
import subprocess

import pytest

from provarmor.model.actions import Action
from provarmor.sources.base import SensorContext, SensorUnavailable
from provarmor.sources.ebpf.sensor import EbpfSensor
from provarmor.testing.sensors import events_while

CONTEXT = SensorContext(
    exclude_pids=(os.getpid(),), audit_backlog_limit=8192, ebpf_perf_rb_pages=256
)


def test_counters_before_start_are_zero_and_name_every_loss():
    counters = EbpfSensor(CONTEXT).kernel_counters()
    assert counters["events"] == counters["lost"] == counters["parse_errors"] == 0
    assert {"gaps", "incomplete", "backlog_bytes", "backlog_peak_bytes"} <= set(counters)
    assert {"reordered", "reorder_late", "reorder_forced"} <= set(counters)


def test_a_host_without_bpftrace_is_told_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no bpftrace on PATH
    with pytest.raises(SensorUnavailable, match=r"^eBPF sensor unavailable: .*bpftrace binary"):
        EbpfSensor(CONTEXT).start()


@pytest.mark.privileged
@pytest.mark.slow
def test_a_command_run_while_the_sensor_is_up_arrives_as_its_exec():
    if os.geteuid() != 0:
        pytest.skip("the eBPF sensor needs root")
    if shutil.which("bpftrace") is None:
        pytest.skip("bpftrace is not installed (scripts/bootstrap.sh dev installs it)")
    marker = f"provarmor-ebpf-sensor-{os.getpid()}"
    sensor = EbpfSensor(CONTEXT)

    def ours(event):
        return event.event.action is Action.EXEC and marker in event.process.args

    try:
        events = events_while(
            sensor,
            lambda: subprocess.run(["/bin/sh", "-c", "true", marker], check=True),
            until=ours,
        )
    except SensorUnavailable as exc:  # root and bpftrace are here: this is a defect
        pytest.fail(f"the eBPF sensor did not start: {exc}")
    (run,) = [event for event in events if ours(event)]
    assert run.process.args == ("/bin/sh", "-c", "true", marker)
    assert run.process.parent is not None and run.process.parent.pid == os.getpid()
    counters = sensor.kernel_counters()
    assert counters["events"] >= len(events) > 0
