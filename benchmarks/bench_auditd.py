"""Throughput of the audit.log importer: raw audit.log -> canonical events, one core.

    .venv/bin/python benchmarks/bench_auditd.py [--copies N] [--fixture NAME ...]

Builds a large log by repeating the recorded fixtures in tests/data/auditd/ with shifted
serials (so every copy is a distinct set of events), then times ``read_auditd`` over it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from provarmor.sources.auditd.importer import read_auditd
from provarmor.sources.base import HostContext, IngestReport

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "auditd"
DEFAULT_FIXTURES = ("attack_chain", "curl_http", "file_ops", "pipeline", "python_connect")


def shifted(lines: list[str], offset: int) -> list[str]:
    out = []
    for line in lines:
        head, sep, rest = line.partition("msg=audit(")
        stamp, close, tail = rest.partition(")")
        time_part, _, serial = stamp.partition(":")
        if sep and close and serial.isdigit():
            line = f"{head}{sep}{time_part}:{int(serial) + offset}{close}{tail}"
        out.append(line)
    return out


def build(fixtures: list[str], copies: int) -> str:
    lines: list[str] = []
    for name in fixtures:
        text = (DATA / f"{name}.log").read_text(errors="surrogateescape")
        lines += [line for line in text.split("\n") if line]
    body: list[str] = []
    for copy in range(copies):
        body += shifted(lines, copy * 1_000_000)
    return "\n".join(body) + "\n"


def run(path: Path) -> tuple[int, IngestReport, float, float]:
    """(events, report, wall seconds, CPU seconds of this process)."""
    report = IngestReport(source=str(path))
    start, cpu = time.perf_counter(), time.process_time()
    count = sum(1 for _ in read_auditd(path, report=report, host=HostContext(id="bench")))
    return count, report, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--fixture", action="append", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    fixtures = options.fixture or list(DEFAULT_FIXTURES)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.log"
        path.write_text(build(fixtures, options.copies), errors="surrogateescape")
        size = path.stat().st_size
        runs = [run(path) for _ in range(options.repeat)]
        count, report = runs[0][0], runs[0][1]
        wall = min(r[2] for r in runs)
        cpu = min(r[3] for r in runs)
        print(f"input: {size / 1e6:.1f} MB, {report.records} records, {count} events")
        print(f"rejected {report.rejected}, skipped {sum(report.skipped.values())}")
        print(f"best of {options.repeat}: {wall:.3f} s wall, {cpu:.3f} s CPU")
        print(f"{count / wall:,.0f} events/s wall, {count / cpu:,.0f} events/s CPU")


if __name__ == "__main__":
    main()
