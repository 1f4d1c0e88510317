"""The audit sensor behind the LiveSensor seam: built from the running processes, and a real
command seen by this machine's kernel audit."""

import os
import subprocess

import pytest

from provarmor.model.actions import Action
from provarmor.sources.auditd.sensor import AuditSensor
from provarmor.sources.base import SensorContext, SensorUnavailable
from provarmor.testing.sensors import events_while

CONTEXT = SensorContext(
    exclude_pids=(os.getpid(),), audit_backlog_limit=8192, ebpf_perf_rb_pages=256
)


def test_counters_before_start_are_zero_and_name_every_loss():
    counters = AuditSensor(CONTEXT).kernel_counters()
    assert counters == {"events": 0, "lost": 0, "parse_errors": 0, "overruns": 0, "backlog": 0}


@pytest.mark.privileged
@pytest.mark.slow
def test_a_command_of_a_running_process_arrives_with_that_process_as_parent():
    """The sensor is seeded from /proc: a child of this (already running) test process
    names this process as its parent."""
    if os.geteuid() != 0:
        pytest.skip("the audit sensor needs root")
    marker = f"provarmor-audit-sensor-{os.getpid()}"
    sensor = AuditSensor(CONTEXT)

    def ours(event):
        return event.event.action is Action.EXEC and marker in event.process.args

    try:
        events = events_while(
            sensor,
            lambda: subprocess.run(["/bin/sh", "-c", "true", marker], check=True),
            until=ours,
        )
    except SensorUnavailable as exc:
        if "already go to pid" in str(exc):  # auditd (or another agent) holds the socket
            pytest.skip(str(exc))
        pytest.fail(f"the audit sensor did not start: {exc}")
    (run,) = [event for event in events if ours(event)]
    assert run.process.args[-1] == marker
    assert run.process.parent is not None and run.process.parent.pid == os.getpid()
    assert sensor.kernel_counters()["events"] >= len(events) > 0
    # what was already running came first, ancestors first, the agent's own pid left out
    running = [event for event in events if event.event.action is Action.RUNNING]
    assert running and events[: len(running)] == running
    order = {event.process.pid: index for index, event in enumerate(running)}
    assert os.getpid() not in order and os.getppid() in order
    for event in running:
        parent = event.process.parent
        if parent is not None and parent.pid in order:
            assert order[parent.pid] < order[event.process.pid]
