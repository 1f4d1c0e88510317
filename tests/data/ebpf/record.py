"""Records the fixtures in this folder from the live sensor (run as root; see README.md).

    cd /work/main && .venv/bin/python tests/data/ebpf/record.py

Writes ``scenario.ndjson`` (bpftrace's raw output lines for the scenario's processes only)
with ``scenario.json`` (what the decoder needs to know about the recording host and run),
and ``lost.ndjson`` (a burst into a one-page buffer: the first lines and the first
``lost_events`` lines).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from provarmor.sources.ebpf.program import ProgramOptions
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.ebpf.wire import Header, StringPart, parse_line

HERE = Path(__file__).resolve().parent
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
"""A short PATH and no locale: fewer failed execve and opens, a smaller fixture."""
HOSTILE = [
    "a\tb",
    "new\nline",
    "back\\x41slash",
    'q"u',
    os.fsdecode(b"\xff\xfe\x01\x1b"),
    '{"type": "lost_events", "data": {"events": 99}}',
    "\u00e9",
]
CLIENT = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for _ in range(3):
    s.sendall(b"x" * 1000)
s.close()
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        del format, args


def record_scenario() -> None:
    lines: list[bytes] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    source = EbpfSource(EbpfSettings(program=ProgramOptions(flush_ms=200)), tap=lines.append)
    source.start()
    context = source.context
    assert context is not None
    roots: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="pa-ebpf-") as work:
        Path(work, "a").write_text("hello\n")
        scenario = {
            "pipeline": ["sh", "-c", "cat /etc/hostname | wc -c"],
            "curl": ["sh", "-c", f"curl -s -o /dev/null http://127.0.0.1:{port}/; true"],
            "files": ["sh", "-c", "cp a b && chmod 640 b && mv b c && rm c"],
            "hostile": ["/bin/echo", *HOSTILE],
            "client": [sys.executable, "-I", "-S", "-c", CLIENT, str(port)],
        }
        for name, argv in scenario.items():
            process = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, env=ENV)
            roots[name] = process.pid
            process.wait()
        time.sleep(0.6)
        source.stop()
    server.shutdown()
    server.server_close()
    meta = {
        "host_id": "fixture-host",
        "boot_id": context.host.boot_id,
        "btime": context.clock.btime,
        "clk_tck": context.clock.clk_tck,
        "monotonic_offset_ns": context.monotonic_offset_ns,
        "port": port,
        "workdir": work,
        "python": sys.executable,
        "roots": roots,
        "hostile": HOSTILE,
    }
    kept = _scenario_lines(lines, set(roots.values()))
    (HERE / "scenario.ndjson").write_bytes(b"".join(kept))
    (HERE / "scenario.json").write_text(json.dumps(meta, indent=2) + "\n")


def _scenario_lines(lines: list[bytes], roots: set[int]) -> list[bytes]:
    """Lines of the scenario's process trees, the b/h/e markers and socket flushes."""
    parsed = [parse_line(line.rstrip(b"\n")) for line in lines]
    parent_of = {
        item.pid: item.values[0] for item in parsed if isinstance(item, Header) and item.kind == "F"
    }
    pids = set(roots)
    while True:
        grown = pids | {child for child, parent in parent_of.items() if parent in pids}
        if grown == pids:
            break
        pids = grown
    kept: list[bytes] = []
    for line, item in zip(lines, parsed, strict=True):
        if isinstance(item, Header):
            if item.kind in "be" or item.pid in pids:
                kept.append(line)
        elif isinstance(item, StringPart):
            if item.tid in pids:
                kept.append(line)
        elif any(f'"{pid},'.encode() in line for pid in pids):
            kept.append(line)
    return kept


def record_loss() -> None:
    lines: list[bytes] = []
    options = ProgramOptions(families=("file",), socket_io=False)
    source = EbpfSource(EbpfSettings(perf_rb_pages=1, program=options), tap=lines.append)
    with tempfile.TemporaryDirectory() as work, source:
        target = Path(work, "burst")
        target.write_text("x")
        burst = f"import os\nfor _ in range(40000):\n    os.close(os.open({str(target)!r}, 0))\n"
        subprocess.run([sys.executable, "-c", burst], check=True)
    first_lost = next(i for i, line in enumerate(lines) if b'"lost_events"' in line)
    excerpt = lines[:3] + lines[first_lost - 4 : first_lost + 3]
    (HERE / "lost.ndjson").write_bytes(b"".join(excerpt))


if __name__ == "__main__":
    record_scenario()
    record_loss()
