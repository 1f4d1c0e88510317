"""Agent cost and drops under a controlled event rate, per sensor backend (root).

    python benchmarks/bench_agent.py [--rates 500 5000 20000] [--sensors ebpf audit]
                                     [--seconds 20]

For each backend and rate: start ``provarmor agent`` (default sink: the local graph store),
wait until its sensor is attached, then run a load generator that opens and closes a file
at the given rate (one ``open`` event each) for ``--seconds``. Reports the agent's CPU (its
own process, and with its bpftrace child), peak RSS, and the drop counters from the agent's
status (kernel losses + queue drops + spool evictions).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
LOAD = r"""
import os, sys, time
rate, seconds, path = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
open(path, "w").close()
start = time.monotonic(); done = 0
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    due = int(elapsed * rate) - done
    for _ in range(due):
        os.close(os.open(path, os.O_RDONLY))
    done += max(due, 0)
    time.sleep(0.002)
print(done)
"""


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    result = list(found)
    for child in found:
        with contextlib.suppress(OSError):
            result += children(child)
    return result


def measure(sensor: str, rate: float, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="provarmor-bench-") as tmp:
        state = Path(tmp) / "state"
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "provarmor",
                "agent",
                "--sensor",
                sensor,
                "--state-dir",
                str(state),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        status_path = state / "agent-status.json"
        deadline = time.monotonic() + 120
        while not status_path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)
        kids = children(agent.pid)
        own0 = cpu_ticks(agent.pid)
        kids0 = sum(cpu_ticks(k) for k in kids)
        before = json.loads(status_path.read_text())["counters"]
        started = time.monotonic()
        load = subprocess.Popen(
            [sys.executable, "-c", LOAD, str(rate), str(seconds), str(Path(tmp) / "target")],
            stdout=subprocess.PIPE,
            text=True,
        )
        peak = 0
        while load.poll() is None:
            peak = max(
                peak,
                rss_kb(agent.pid) + sum(rss_kb(k) for k in kids if Path(f"/proc/{k}").exists()),
            )
            time.sleep(0.25)
        generated = int(load.stdout.read().strip() or 0) if load.stdout else 0
        time.sleep(3.0)  # let the agent drain
        elapsed = time.monotonic() - started
        own = (cpu_ticks(agent.pid) - own0) / TICK
        total = (
            own + (sum(cpu_ticks(k) for k in kids if Path(f"/proc/{k}").exists()) - kids0) / TICK
        )
        agent.send_signal(signal.SIGINT)
        agent.wait(timeout=120)
        after = json.loads(status_path.read_text())["counters"]
    drops = sum(
        after.get(key, 0) - before.get(key, 0)
        for key in ("sensor.lost", "queue.dropped", "spool.evicted.lost")
    )
    return {
        "sensor": sensor,
        "rate": rate,
        "generated": generated,
        "events": after.get("sensor.events", 0) - before.get("sensor.events", 0),
        "drops": drops,
        "cpu_agent_pct": 100 * own / elapsed,
        "cpu_with_children_pct": 100 * total / elapsed,
        "peak_rss_mb": peak / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 5000, 20000])
    parser.add_argument("--sensors", nargs="+", default=["ebpf", "audit"])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(
        "| sensor | target events/s | generated | events seen | drops | agent CPU % "
        "| with bpftrace % | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for sensor in args.sensors:
        for rate in args.rates:
            r = measure(sensor, rate, args.seconds)
            print(
                f"| {r['sensor']} | {r['rate']:,.0f} | {r['generated']:,} | {r['events']:,} | "
                f"{r['drops']:,} | {r['cpu_agent_pct']:.1f} | {r['cpu_with_children_pct']:.1f} | "
                f"{r['peak_rss_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
