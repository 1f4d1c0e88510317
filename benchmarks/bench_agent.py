"""Agent cost and drops under a controlled event rate or a real burst, per sensor (root).

    python benchmarks/bench_agent.py [--rates 500 5000 20000] [--sensors ebpf audit]
                                     [--seconds 20]
    python benchmarks/bench_agent.py --burst [--steps apt make pip installer] [--runs 3]

For each backend and rate: start ``provarmor agent`` (default sink: the local graph store),
wait until its sensor is attached, then run a load generator that opens and closes a file
at the given rate (one ``open`` event each) for ``--seconds``. With ``--burst``, the load is
instead the real work of :mod:`burst` (a package install and purge with its maintainer
scripts, a ``make -j2``, a pip source build, a ``curl | bash`` installer), ``--runs`` times.
Reports the agent's CPU (its own process, and with its bpftrace child), peak RSS, the drop
counters from the agent's status (kernel losses + queue drops + spool evictions) as a share
of everything the sensor saw or lost, and the machine's load average before each run.
Run it under ``flock /tmp/provarmor-live.lock`` on a shared machine.
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
from collections.abc import Callable
from pathlib import Path

import burst

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


def open_close(rate: float, seconds: float) -> Callable[[Path], subprocess.Popen[str]]:
    def start(tmp: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", LOAD, str(rate), str(seconds), str(tmp / "target")],
            stdout=subprocess.PIPE,
            text=True,
        )

    return start


def real_burst(steps: list[str]) -> Callable[[Path], subprocess.Popen[str]]:
    def start(tmp: Path) -> subprocess.Popen[str]:
        script = Path(burst.__file__).resolve()
        return subprocess.Popen(
            [sys.executable, str(script), *steps], stdout=subprocess.PIPE, text=True, cwd=tmp
        )

    return start


def measure(
    sensor: str, load_command: Callable[[Path], subprocess.Popen[str]]
) -> dict[str, object]:
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
        load_average = os.getloadavg()[0]
        started = time.monotonic()
        load = load_command(Path(tmp))
        peak = 0
        while load.poll() is None:
            peak = max(
                peak,
                rss_kb(agent.pid) + sum(rss_kb(k) for k in kids if Path(f"/proc/{k}").exists()),
            )
            time.sleep(0.25)
        output = load.stdout.read().strip() if load.stdout else ""
        if load.returncode != 0:
            raise RuntimeError(f"the load failed (exit status {load.returncode})")
        drained = _wait_drained(status_path) - started
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
    events = after.get("sensor.events", 0) - before.get("sensor.events", 0)
    return {
        "sensor": sensor,
        "load": output.splitlines()[-1] if output else "",
        "events": events,
        "drops": drops,
        "lost_pct": 100 * drops / max(events + drops, 1),
        "events_per_s": events / drained,
        "cpu_agent_pct": 100 * own / elapsed,
        "cpu_with_children_pct": 100 * total / elapsed,
        "peak_rss_mb": peak / 1024,
        "load_average": load_average,
    }


def _wait_drained(status_path: Path, *, limit_s: float = 300.0) -> float:
    """When (``time.monotonic()``) the agent had caught up with the load: less than one
    batch waits in the sensor's output backlog, the agent's queue and the spool (other work
    on the machine keeps events coming, so the counters never stand still)."""
    began, now = time.monotonic(), time.time()
    while time.monotonic() - began < limit_s:
        status = json.loads(status_path.read_text())
        counters = status["counters"]
        if status["updated_at"] > now and (
            counters.get("sensor.backlog_bytes", 0) < 1 << 20
            and counters.get("queue.size", 0) < 5000
            and counters.get("spool.pending", 0) < 5000
        ):
            break
        time.sleep(0.5)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 5000, 20000])
    parser.add_argument("--sensors", nargs="+", default=["ebpf", "audit"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--burst", action="store_true", help="replay a real burst instead")
    parser.add_argument("--steps", nargs="+", default=list(burst.STEPS), choices=burst.STEPS)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    if args.burst:
        print(
            "| sensor | run | load avg | events seen | lost | lost % | events/s "
            "| agent CPU % | with bpftrace % | peak RSS MB |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for sensor in args.sensors:
            for run in range(1, args.runs + 1):
                r = measure(sensor, real_burst(args.steps))
                print(
                    f"| {r['sensor']} | {run} | {r['load_average']:.1f} | {r['events']:,} | "
                    f"{r['drops']:,} | {r['lost_pct']:.3f} | {r['events_per_s']:,.0f} | "
                    f"{r['cpu_agent_pct']:.1f} | {r['cpu_with_children_pct']:.1f} | "
                    f"{r['peak_rss_mb']:.0f} |",
                    flush=True,
                )
        return
    print(
        "| sensor | target events/s | generated | events seen | drops | agent CPU % "
        "| with bpftrace % | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for sensor in args.sensors:
        for rate in args.rates:
            r = measure(sensor, open_close(rate, args.seconds))
            print(
                f"| {r['sensor']} | {rate:,.0f} | {r['load'] or 0} | {r['events']:,} | "
                f"{r['drops']:,} | {r['cpu_agent_pct']:.1f} | {r['cpu_with_children_pct']:.1f} | "
                f"{r['peak_rss_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
