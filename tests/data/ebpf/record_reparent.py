"""Records ``reparent.ndjson``/``reparent.json`` from the live sensor (root; see README.md).

    cd /work/main && .venv/bin/python tests/data/ebpf/record_reparent.py

Runs ``sh -c 'nohup sh -c "sleep 0.3; cat /etc/hostname" >/dev/null 2>&1 &'`` five times
(the outer sh exits at once, so its child is often re-parented to init before it first
runs) with the process probes only, and keeps the lines of those process trees (found
through both sides of their forks) and the heartbeats.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from provarmor.sources.ebpf.program import ProgramOptions
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.ebpf.wire import Header, StringPart, parse_line

HERE = Path(__file__).resolve().parent
COMMAND = 'nohup sh -c "sleep 0.3; cat /etc/hostname" >/dev/null 2>&1 &'
RUNS = 5


def record() -> None:
    lines: list[bytes] = []
    options = ProgramOptions(families=("process",), flush_ms=200)
    source = EbpfSource(EbpfSettings(program=options), tap=lines.append)
    source.start()
    context = source.context
    assert context is not None
    roots = []
    for _ in range(RUNS):
        process = subprocess.Popen(["sh", "-c", COMMAND], env={"PATH": "/usr/bin:/bin"})
        roots.append(process.pid)
        process.wait()
    time.sleep(1.5)
    source.stop()
    meta = {
        "host_id": "fixture-host",
        "boot_id": context.host.boot_id,
        "btime": context.clock.btime,
        "clk_tck": context.clock.clk_tck,
        "monotonic_offset_ns": context.monotonic_offset_ns,
        "command": COMMAND,
        "roots": roots,
    }
    (HERE / "reparent.ndjson").write_bytes(b"".join(_tree_lines(lines, set(roots))))
    (HERE / "reparent.json").write_text(json.dumps(meta, indent=2) + "\n")


def _tree_lines(lines: list[bytes], roots: set[int]) -> list[bytes]:
    parsed = [parse_line(line.rstrip(b"\n")) for line in lines]
    headers = [item for item in parsed if isinstance(item, Header)]
    pids = set(roots)
    while True:
        grown = pids | {h.pid for h in headers if h.kind == "F" and h.values[0] in pids}
        grown |= {h.values[0] for h in headers if h.kind == "J" and h.pid in pids}
        if grown == pids:
            break
        pids = grown
    kept: list[bytes] = []
    for line, item in zip(lines, parsed, strict=True):
        if (isinstance(item, Header) and (item.kind in "beh" or item.pid in pids)) or (
            isinstance(item, StringPart) and item.tid in pids
        ):
            kept.append(line)
    return kept


if __name__ == "__main__":
    record()
