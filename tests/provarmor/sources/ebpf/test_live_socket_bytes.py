"""The real sensor (bpftrace on this kernel): every byte a process sends or receives on a
socket is counted, with its first byte's time, however the transfers fall across the flush
ticks. Thousands of short loopback transfers over a few seconds of 100 ms ticks: with the
printed generation made current at the tick (before the fix), a transfer that fell in the
lag between bpftrace's print and its clear vanished whole (1 to 3 of ~3,400 per run), which
is how a curl download lost its socket in a backward trace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from provarmor.model.actions import Action
from provarmor.sources.ebpf.program import ProgramOptions
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PAYLOAD = 65536
TRANSFERS = r"""
import socket, sys, threading, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(128)
payload = b"x" * int(sys.argv[2])

def serve():
    while True:
        peer, _ = server.accept()
        peer.sendall(payload)
        peer.close()

threading.Thread(target=serve, daemon=True).start()
end, count = time.monotonic() + float(sys.argv[1]), 0
while time.monotonic() < end:
    client = socket.create_connection(server.getsockname())
    got = 0
    while got < len(payload) and (chunk := client.recv(65536)):
        got += len(chunk)
    client.close()
    count += 1
    time.sleep(0.002)
print(count)
"""


def test_no_transfer_is_lost_between_a_flush_and_the_next() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sensor needs root")
    if shutil.which("bpftrace") is None:
        pytest.skip("bpftrace is not installed (scripts/bootstrap.sh dev installs it)")
    source = EbpfSource(EbpfSettings(program=ProgramOptions(flush_ms=100)))
    with source:
        workload = subprocess.Popen(
            [sys.executable, "-c", TRANSFERS, "6", str(PAYLOAD)], stdout=subprocess.PIPE, text=True
        )
        out, _ = workload.communicate(timeout=60)
        assert workload.returncode == 0
    events = list(source.events())
    transfers = int(out)
    assert transfers > 500
    # the workload's own flows: the machine's other processes send and receive meanwhile
    flows = [
        e
        for e in events
        if e.event.action in (Action.SEND, Action.RECV) and e.process.pid == workload.pid
    ]
    for action in (Action.SEND, Action.RECV):
        counted = sum(e.network.bytes for e in flows if e.event.action == action and e.network)
        assert counted == transfers * PAYLOAD, (action, transfers, counted)
    assert source.counters.untimed_flows == 0
    assert all(e.timestamp <= e.event.end for e in flows)
