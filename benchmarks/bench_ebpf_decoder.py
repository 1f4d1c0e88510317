"""CPU cost of the eBPF decoder on real bpftrace output, with and without the reorder stage.

    .venv/bin/python benchmarks/bench_ebpf_decoder.py [RAW ...] [--reorder-ms 0 50] [--repeat 5]

RAW: bpftrace's raw output as the agent records it (``raw.jsonl`` or ``raw.jsonl.gz`` of a
lab or corpus dataset; default: the fixtures in tests/data/ebpf, repeated ``--copies``
times). Decodes every line on one core, as the live source's decoder thread does, and prints
the best of ``--repeat`` runs per reorder delay (CPU seconds, microseconds per line), the
records the stage put back in order and those that came too late for it.

With ``--forks``, instead of timing: per file and delay, the child fork records the stage
lets out before an exec record (argv or exec) that their parent made before the fork (the
child would be decoded without the program it inherited), and the records too late for the
stage. Each file is read up to bpftrace's shutdown (after SIGINT it reads one CPU's buffer
seconds late: the first record over a second older than one read before it).
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

from provarmor.model.errors import ParseError
from provarmor.model.time_units import NS_PER_SECOND, ms_to_ns
from provarmor.sources.ebpf import wire
from provarmor.sources.ebpf.decoder import DecoderContext, EbpfCounters, EbpfDecoder
from provarmor.sources.ebpf.reorder import ReorderBuffer
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


def fork_order(path: Path, delays: list[int]) -> str:
    """One line: per delay, forks let out before an earlier exec of their parent, and the
    records too late for the stage (see the module docstring)."""
    parsed: list[wire.Line] = []
    newest = 0
    for line in read_lines([path], 1):
        try:
            item = wire.parse_line(line)
        except ParseError:
            continue
        if isinstance(item, wire.Header | wire.StringPart):
            if newest - item.ns > NS_PER_SECOND:
                break  # bpftrace's shutdown
            newest = max(newest, item.ns)
        parsed.append(item)
    counts = []
    for delay in delays:
        counters = EbpfCounters()
        stage = ReorderBuffer(ms_to_ns(delay), counters)
        out = [line for item in parsed for _, line in stage.push(item, "")]
        out += [line for _, line in stage.drain()]
        headers = [(i, h) for i, h in enumerate(out) if isinstance(h, wire.Header)]
        execs: dict[int, list[tuple[int, int]]] = {}
        for i, h in headers:
            if h.kind in ("V", "E"):
                execs.setdefault(h.pid, []).append((h.ns, i))
        early = sum(
            1
            for i, h in headers
            if h.kind == "F" and any(ns < h.ns and at > i for ns, at in execs.get(h.values[0], []))
        )
        counts.append(f"{delay} ms: {early} early forks, {counters.reorder_late} late records")
    return f"{path}: {len(parsed)} lines; " + "; ".join(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw", nargs="*", type=Path)
    parser.add_argument("--reorder-ms", nargs="+", type=int, default=[0, 50])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--forks", action="store_true", help="order check, no timing")
    options = parser.parse_args()
    if options.forks:
        for path in options.raw:
            print(fork_order(path, options.reorder_ms), flush=True)
        return
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
