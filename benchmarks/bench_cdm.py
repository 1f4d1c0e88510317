"""Throughput of the CDM18 importer: records and events per second on a real CDM file.

    .venv/bin/python benchmarks/bench_cdm.py [FILE.cdm.json] [--repeat N]

Without FILE it uses CADETS ``git_pull.cdm.json`` from ../shared/data when present, else the
test fixture. The file is concatenated ``--repeat`` times into a temporary file so the run
is long enough to time; UUIDs repeat, which the importer handles like redefinitions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.cdm import read_cdm

ROOT = Path(__file__).resolve().parent.parent
SHARED = (
    ROOT.parent / "shared" / "data" / "darpa-tc" / "cadets" / "git" / "cdm" / "git_pull.cdm.json"
)
FIXTURE = ROOT / "tests" / "data" / "cdm" / "cadets_cp.cdm.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "file", type=Path, nargs="?", default=SHARED if SHARED.exists() else FIXTURE
    )
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    body = options.file.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.cdm.json"
        path.write_bytes(body * options.repeat)
        report = IngestReport(source=str(path))
        started = time.perf_counter()
        count = sum(1 for _ in read_cdm(path, report=report, host=HostContext()))
        elapsed = time.perf_counter() - started
    megabytes = len(body) * options.repeat / 1e6
    print(f"{options.file.name} x{options.repeat}: {report.records} records, {count} events")
    rates = (report.records / elapsed, count / elapsed, megabytes / elapsed)
    print(
        f"{elapsed:.2f} s: {rates[0]:,.0f} records/s, {rates[1]:,.0f} events/s, {rates[2]:.1f} MB/s"
    )


if __name__ == "__main__":
    main()
