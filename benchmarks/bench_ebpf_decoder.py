"""CPU cost of the eBPF decoder on real bpftrace output, with and without the reorder stage.

    .venv/bin/python benchmarks/bench_ebpf_decoder.py [RAW ...] [--reorder-ms 0 50] [--repeat 5]

RAW: bpftrace's raw output as the agent records it (``raw.jsonl`` or ``raw.jsonl.gz`` of a
lab or corpus dataset; default: the fixtures in tests/data/ebpf, repeated ``--copies``
times). Decodes every line on one core, as the live source's decoder thread does, and prints
the best of ``--repeat`` runs per reorder delay (CPU seconds, microseconds per line), the
records the stage put back in order and those that came too late for it.
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

from provarmor.model.time_units import ms_to_ns
from provarmor.sources.ebpf.decoder import DecoderContext, EbpfCounters, EbpfDecoder
from provarmor.sources.procfs import HostIdentity, ProcClock

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "ebpf"
FIXTURES = ("scenario.ndjson", "reparent.ndjson", "cron_disorder.ndjson")


def read_lines(paths: list[Path], copies: int) -> list[bytes]:
    if not paths:
        fixtures = [line for name in FIXTURES for line in (DATA / name).read_bytes().splitlines()]
        return fixtures * copies
    lines: list[bytes] = []
    for path in paths:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        lines += raw.splitlines()
    return lines


def decode(lines: list[bytes], reorder_ns: int) -> tuple[float, int, EbpfCounters]:
    """(CPU seconds, events, counters) of one decoder run over ``lines``."""
    context = DecoderContext(
        host=HostIdentity(id="bench", boot_id="bench", name="bench"),
        clock=ProcClock(btime=1_700_000_000),
        monotonic_offset_ns=1_700_000_000_000_000_000,
        reorder_ns=reorder_ns,
    )
    decoder = EbpfDecoder(context)
    events = 0
    cpu = time.process_time()
    for number, line in enumerate(lines, 1):
        events += len(decoder.feed(line, number))
    events += len(decoder.finish())
    return time.process_time() - cpu, events, decoder.counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw", nargs="*", type=Path)
    parser.add_argument("--reorder-ms", nargs="+", type=int, default=[0, 50])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--copies", type=int, default=50)
    options = parser.parse_args()
    lines = read_lines(options.raw, options.copies)
    print(f"{len(lines)} lines")
    for delay in options.reorder_ms:
        runs = [decode(lines, ms_to_ns(delay)) for _ in range(options.repeat)]
        cpu = min(run[0] for run in runs)
        _, events, counters = runs[0]
        print(
            f"reorder {delay} ms: best of {options.repeat} {cpu:.3f} s CPU, "
            f"{cpu / len(lines) * 1e6:.2f} us/line, {events} events, "
            f"reordered {counters.reordered}, late {counters.reorder_late}, "
            f"forced {counters.reorder_forced}"
        )


if __name__ == "__main__":
    main()
