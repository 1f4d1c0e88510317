"""Live: how often a child's fork is decoded before its parent's exec, and what the reorder
stage costs in latency (root; run it under ``flock /tmp/provarmor-live.lock``).

    .venv/bin/python benchmarks/bench_ebpf_order.py [--runs 150] [--reorder-ms 0 50]
                                                    [--noise-rate 3000]

For each reorder delay, one sensor run: ``--runs`` times the pattern of
tests/provarmor/sources/ebpf/test_live_reparent.py (``sh -c 'nohup sh -c "..." &'``, every
other one with the outer shell real-time on CPU 0), while two processes pinned to CPU 0
and CPU 1 open a file ``--noise-rate`` times a second each (bpftrace is busy: the CPU
buffers fill between its reads, as on a loaded host). The inner shell's fork must carry
the outer shell's program (its exec came first); it is *wrong* when it carries what the
outer shell was before its exec. Counted in the live events, and in the same raw records
decoded again offline with each delay (the same kernel input, with and without the
stage). Latency, for what came before the sensor was stopped: when each record was read
from bpftrace (``read``) and when each event reached the consumer (``latency``), minus its
record time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from provarmor.model.actions import Action
from provarmor.model.errors import ParseError
from provarmor.model.event import Event
from provarmor.model.time_units import ms_to_ns
from provarmor.sources.ebpf import wire
from provarmor.sources.ebpf.decoder import DecoderContext, EbpfDecoder
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings

INNER = "sleep 0.2; cat /etc/hostname"
PINNED = ["taskset", "-c", "0", "chrt", "--fifo", "--reset-on-fork", "10"]
NOISE = """
import os, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + seconds
done = 0
start = time.monotonic()
while time.monotonic() < end:
    os.close(os.open("/etc/hostname", os.O_RDONLY))
    done += 1
    ahead = done / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
"""


def workload(runs: int, tag: str) -> list[str]:
    """Run the pattern ``runs`` times; the outer shells' commands (one per run)."""
    commands = []
    for run in range(runs):
        command = f'nohup sh -c "{INNER}" >/dev/null 2>&1 & : {tag}-{run}'
        commands.append(command)
        pin = PINNED if run % 2 == 0 else []
        subprocess.run([*pin, "sh", "-c", command], check=True)
        time.sleep(0.01)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", INNER], capture_output=True).returncode != 0:
            break
        time.sleep(0.05)
    return commands


def wrong_forks(events: list[Event], commands: list[str]) -> tuple[int, int]:
    """(inner shells checked, inner shells whose fork did not carry the outer's program)."""
    wanted = {("sh", "-c", command) for command in commands}
    outer = {
        e.process.entity_id: e.process.args
        for e in events
        if e.event.action == Action.EXEC and e.process.args in wanted
    }
    checked = wrong = 0
    for event in events:
        parent = event.process.parent
        if event.event.action != Action.FORK or parent is None or parent.entity_id not in outer:
            continue
        checked += 1
        wrong += event.process.args != outer[parent.entity_id]
    return checked, wrong


def _header(line: bytes) -> wire.Header | None:
    try:
        parsed = wire.parse_line(line.rstrip(b"\n"))
    except ParseError:
        return None
    return parsed if isinstance(parsed, wire.Header) else None


def decode(lines: list[bytes], context: DecoderContext, reorder_ns: int) -> list[Event]:
    decoder = EbpfDecoder(dataclasses.replace(context, reorder_ns=reorder_ns))
    raw = [line.rstrip(b"\n") for line in lines]  # the tap sees each line with its newline
    events = [e for number, line in enumerate(raw, 1) for e in decoder.feed(line, number)]
    return events + decoder.finish()


def session(delay_ms: int, options: argparse.Namespace) -> dict[str, object]:
    lines: list[bytes] = []
    read_at: list[int] = []

    def tap(line: bytes) -> None:
        read_at.append(time.time_ns())
        lines.append(line)

    source = EbpfSource(EbpfSettings(reorder_ms=delay_ms, perf_rb_pages=2048), tap=tap)
    received: list[tuple[int, Event]] = []
    with source:
        consumer = threading.Thread(
            target=lambda: received.extend((time.time_ns(), e) for e in source.events())
        )
        consumer.start()
        noise = [
            subprocess.Popen(
                [
                    *("taskset", "-c", str(cpu), sys.executable, "-S", "-c", NOISE),
                    *(str(options.noise_rate), str(options.seconds)),
                ]
            )
            for cpu in (0, 1)
            if options.noise_rate
        ]
        commands = workload(options.runs, f"d{delay_ms}-{os.getpid()}")
        for process in noise:
            process.wait()
        stopping = time.time_ns()
    consumer.join()
    events = [event for _, event in received]
    latencies = [(at - event.timestamp) / 1e6 for at, event in received]
    # what bpftrace reads after SIGINT waits for its probes to detach (seconds): left out
    latency = sorted(ms for (at, _), ms in zip(received, latencies, strict=True) if at < stopping)
    context = source.context
    assert context is not None
    read = sorted(
        (at - context.monotonic_offset_ns - header.ns) / 1e6
        for at, header in zip(read_at, map(_header, lines), strict=True)
        if header is not None and at < stopping
    )
    if options.keep:
        path = options.keep / f"raw-{delay_ms}ms.jsonl"
        path.write_bytes(b"".join(lines))
        slow = [(ms, e) for (at, e), ms in zip(received, latencies, strict=True) if ms > 1000]
        with (options.keep / f"slow-{delay_ms}ms.txt").open("w") as out:
            for ms, event in slow:
                out.write(f"{ms:.0f} {event.event.action} {event.process.pid} {event.timestamp}\n")
    result: dict[str, object] = {
        "live": wrong_forks(events, commands),
        "read_ms_p50": round(statistics.median(read), 1),
        "read_ms_p99": round(read[int(0.99 * (len(read) - 1))], 1),
        "latency_ms_p50": round(statistics.median(latency), 1),
        "latency_ms_p99": round(latency[int(0.99 * (len(latency) - 1))], 1),
        "events": len(events),
        "lost": source.counters.lost,
        "reordered": source.counters.reordered,
        "reorder_late": source.counters.reorder_late,
    }
    for other in options.reorder_ms:
        result[f"offline_{other}ms"] = wrong_forks(
            decode(lines, context, ms_to_ns(other)), commands
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--reorder-ms", nargs="+", type=int, default=[0, 50])
    parser.add_argument("--noise-rate", type=float, default=3000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--keep", type=Path, help="a folder for the raw output and slow events")
    options = parser.parse_args()
    for delay in options.reorder_ms:
        print(f"reorder {delay} ms (checked, wrong):", session(delay, options), flush=True)


if __name__ == "__main__":
    main()
