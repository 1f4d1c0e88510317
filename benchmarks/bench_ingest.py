"""Replay benchmark: recorded events -> provenance graph in SQLite, on one core.

Amplifies a real recording to the requested size by replaying it again and again as if new
processes did the same work later (entity ids, event ids and audit serials/pids are remapped,
timestamps shifted; paths and remote endpoints are kept, as a real busy host would share
them), then ingests the result through the product's own `ingest_file` and prints events/s
and peak RSS.

    python benchmarks/bench_ingest.py --format ndjson --input X.ndjson --events 1000000
    python benchmarks/bench_ingest.py --format auditd --input audit.log --events 1000000

Inputs are any file an importer reads; for ``ndjson`` the input may be in any format
(``--input-format``) and is converted first.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from provarmor.graph.settings import GraphSettings
from provarmor.model.codec import encode_ndjson
from provarmor.model.event import Event
from provarmor.pipeline.ingest import ingest_file
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.registry import IMPORTERS
from provarmor.storage.sqlite_graph import SqliteGraphStore


def _remap(event: Event, copy: int, shift: int) -> Event:
    process = event.process
    parent = process.parent
    suffix = f"~{copy}"
    new_parent = (
        msgspec.structs.replace(parent, entity_id=parent.entity_id + suffix) if parent else None
    )
    target = event.target
    if target is not None and target.process is not None:
        target = msgspec.structs.replace(
            target,
            process=msgspec.structs.replace(
                target.process, entity_id=target.process.entity_id + suffix
            ),
        )
    return msgspec.structs.replace(
        event,
        timestamp=event.timestamp + shift,
        event=msgspec.structs.replace(event.event, id=event.event.id + suffix),
        process=msgspec.structs.replace(
            process, entity_id=process.entity_id + suffix, parent=new_parent
        ),
        target=target,
    )


def amplify_ndjson(source: Path, source_format: str, total: int, out: Path) -> int:
    report = IngestReport(source=str(source))
    base = list(IMPORTERS[source_format](source, report=report, host=HostContext(id="bench")))
    if not base:
        raise SystemExit(f"no events in {source}")
    plausible = [e.timestamp for e in base if e.timestamp > 10**15] or [0]
    span = max(plausible) - min(plausible) + 1_000_000
    written = 0
    with out.open("wb") as handle:
        copy = 0
        while written < total:
            chunk = base[: total - written]
            handle.write(encode_ndjson(_remap(e, copy, span * copy) for e in chunk))
            written += len(chunk)
            copy += 1
    return written


_SERIAL = re.compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")
_PIDS = re.compile(rb"\b(pid|ppid)=(\d+)")


def amplify_auditd(source: Path, total_events: int, out: Path) -> int:
    """Repeat an audit log with shifted serials, times and pids until it yields
    ``total_events`` canonical events (counted by the importer on the first copy)."""
    lines = source.read_bytes().splitlines(keepends=True)
    report = IngestReport(source=str(source))
    per_copy = sum(1 for _ in IMPORTERS["auditd"](source, report=report, host=HostContext()))
    copies = max(1, -(-total_events // max(per_copy, 1)))
    with out.open("wb") as handle:
        for copy in range(copies):
            offset = copy * 100_000

            def serial(match: re.Match[bytes], offset: int = offset) -> bytes:
                seconds = int(match[1]) + offset // 100
                return b"msg=audit(%d.%s:%d)" % (seconds, match[2], int(match[3]) + offset)

            def pid(match: re.Match[bytes], copy: int = copy) -> bytes:
                value = int(match[2])
                return b"%s=%d" % (match[1], value if value <= 1 else value + copy * 4_000_000)

            handle.writelines(_PIDS.sub(pid, _SERIAL.sub(serial, line)) for line in lines)
    return per_copy * copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path)
    parser.add_argument("--ingest-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=["ndjson", "auditd"], default="ndjson")
    parser.add_argument("--input-format", default="ndjson", help="for --format ndjson")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--no-event-index", action="store_true")
    args = parser.parse_args()
    if args.ingest_only is not None:
        ingest_only(args.ingest_only, args.format, index_events=not args.no_event_index)
        return
    if args.input is None:
        parser.error("--input is required")
    os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        replay = Path(tmp) / f"replay.{args.format}"
        if args.format == "ndjson":
            expected = amplify_ndjson(args.input, args.input_format, args.events, replay)
        else:
            expected = amplify_auditd(args.input, args.events, replay)
        size = replay.stat().st_size
        # ingest in a fresh process, so its peak RSS is the ingest's own
        child = subprocess.run(
            [sys.executable, __file__, "--ingest-only", str(replay), "--format", args.format]
            + (["--no-event-index"] if args.no_event_index else []),
            capture_output=True,
            text=True,
            check=True,
        )
    print(f"input            {args.input} ({args.format}, replayed {size / 1e6:.0f} MB)")
    print(f"expected events  {expected:,}")
    sys.stdout.write(child.stdout)


def ingest_only(replay: Path, format: str, *, index_events: bool) -> None:
    os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        store = SqliteGraphStore(Path(tmp) / "graph.db")
        started = time.perf_counter()
        settings = GraphSettings(index_events=index_events)
        result = ingest_file(replay, format=format, store=store, settings=settings)
        seconds = time.perf_counter() - started
        store.close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        db_size = (Path(tmp) / "graph.db").stat().st_size
    counters = result.counters
    print(f"events           {result.report.events:,}, rejected {result.report.rejected:,}")
    print(f"edges            {counters.edges_created:,} created, {counters.edges_merged:,} merged")
    print(f"seconds          {seconds:.1f} (one core)")
    print(f"events/s         {result.report.events / seconds:,.0f}")
    print(f"peak RSS         {rss / 1024:.0f} MB")
    print(f"store size       {db_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
