"""Retention benchmark: a manager ingesting a real recording without end, retention on or off.

Replays a lab recording again and again into the manager's own ingest path (the host's
analysis: graph, rules, incidents; then the findings store), each copy as new processes and
events ``span`` later, as a busy host would send them. With ``--retention`` a pass runs every
``--every`` seconds with the newest ingested event time as the present (data time runs
faster than the clock here), under ``--events-minutes`` / ``--graph-minutes`` of age and the
size bounds. Every ``--sample`` seconds it records the bytes on disk (findings store with
its WAL, host graphs with theirs) and the events ingested; the JSON also has events/s
overall and each pass's report.

    python benchmarks/bench_retention.py --seconds 180 --json off.json
    python benchmarks/bench_retention.py --seconds 180 --retention --json on.json
    python benchmarks/bench_retention.py --db 'postgresql://...?schema=benchret' --retention

With ``--db`` the sizes are the PostgreSQL schemas' (findings, and ``<schema>_h*`` for the
host graphs): drop them afterwards.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import threading
import time
from pathlib import Path

import msgspec
import psycopg

from provarmor.manager.app import build_context
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.retention import Retention
from provarmor.manager.settings import ManagerSettings, RetentionSettings
from provarmor.manager.store import AgentRecord, TokenRecord
from provarmor.model.codec import encode_json, parse_json_event
from provarmor.model.event import Event
from provarmor.storage.postgres_dialect import split_schema

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "tests" / "data" / "lab" / "benign-seed2" / "events.ndjson.gz"
MIB = 1024**2


def as_copy(event: Event, copy: int, shift: int) -> Event:
    """``event`` as the ``copy``-th replay: its own processes and event id, ``shift`` later."""
    tag = f"~{copy}"
    process = event.process
    parent = process.parent
    if parent is not None:
        parent = msgspec.structs.replace(parent, entity_id=parent.entity_id + tag)
    target = event.target
    if target is not None and target.process is not None:
        target = msgspec.structs.replace(
            target,
            process=msgspec.structs.replace(
                target.process, entity_id=target.process.entity_id + tag
            ),
        )
    return msgspec.structs.replace(
        event,
        timestamp=event.timestamp + shift,
        event=msgspec.structs.replace(event.event, id=event.event.id + tag),
        process=msgspec.structs.replace(process, entity_id=process.entity_id + tag, parent=parent),
        target=target,
    )


def disk_bytes(state_dir: Path) -> dict[str, int]:
    """Bytes on disk of the findings store and of the host graphs (each with its WAL)."""
    findings = sum(p.stat().st_size for p in state_dir.glob("manager.db*"))
    graphs = sum(p.stat().st_size for p in (state_dir / "graphs").glob("*.db*"))
    return {"findings": findings, "graphs": graphs}


SCHEMA_BYTES = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname LIKE %s"
)


def schema_bytes(url: str, schema: str) -> dict[str, int]:
    """Bytes of the findings schema and of the host graph schemas beside it (PostgreSQL)."""
    base, _ = split_schema(url)
    with psycopg.connect(base) as db:
        findings = db.execute(SCHEMA_BYTES, (schema,)).fetchone()
        graphs = db.execute(SCHEMA_BYTES, (f"{schema}\\_h%",)).fetchone()
    return {
        "findings": int(findings[0]) if findings else 0,
        "graphs": int(graphs[0]) if graphs else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recording", type=Path, default=RECORDING)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--batch", type=int, default=2_000, help="Events per upload.")
    parser.add_argument("--retention", action="store_true")
    parser.add_argument("--every", type=float, default=10.0, help="Seconds between passes.")
    parser.add_argument("--events-minutes", type=float, default=30.0)
    parser.add_argument("--graph-minutes", type=float, default=30.0)
    parser.add_argument("--findings-mib", type=int, default=64)
    parser.add_argument("--graph-mib", type=int, default=64)
    parser.add_argument("--sample", type=float, default=5.0)
    parser.add_argument("--db", default="", help="Findings store URL (default: SQLite).")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    lines = gzip.decompress(args.recording.read_bytes()).splitlines()
    events = [parse_json_event(line) for line in lines]
    start, end = events[0].timestamp, max(e.timestamp for e in events)
    span = end - start + 10**9
    host = events[0].host.id

    state_dir = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    schema = split_schema(args.db)[1] or "public"

    def measure() -> dict[str, int]:
        return schema_bytes(args.db, schema) if args.db else disk_bytes(state_dir)

    settings = ManagerSettings(state_dir=state_dir, database_url=args.db)
    store = open_findings_store(settings.effective_database_url())
    context = build_context(settings, store)
    ingestor = context.ingestor
    agent = AgentRecord(id="bench-agent", host_id=host, hostname="bench", enrolled_ns=1)
    store.add_agent(
        agent,
        credential=TokenRecord(
            id="bench-agent", role=Role.AGENT, salt="0", digest="0", created_ns=1
        ),
    )
    minute_days = 1 / 1440
    retention = Retention(
        RetentionSettings(
            batch_rows=5_000,
            events_days=args.events_minutes * minute_days,
            alerts_days=args.events_minutes * minute_days,
            incidents_days=args.events_minutes * minute_days,
            graph_days=args.graph_minutes * minute_days,
            findings_max_bytes=args.findings_mib * MIB,
            graph_max_bytes=args.graph_mib * MIB,
        ),
        store,
        ingestor,
        metrics=context.metrics,
    )
    newest = [start]
    passes: list[dict[str, object]] = []
    stop = threading.Event()

    def prune() -> None:
        while not stop.wait(args.every):
            report = retention.run_once(newest[0])
            passes.append(json.loads(report.to_json()))

    pruner = threading.Thread(target=prune, daemon=True)
    if args.retention:
        pruner.start()

    samples: list[dict[str, object]] = []
    ingested = 0
    sequence = 0
    copy = 0
    began = time.perf_counter()
    next_sample = 0.0
    while (elapsed := time.perf_counter() - began) < args.seconds:
        shift = copy * span
        body_lines = [encode_json(as_copy(e, copy, shift)) for e in events]
        for first in range(0, len(body_lines), args.batch):
            chunk = body_lines[first : first + args.batch]
            sequence += len(chunk)
            ingestor.ingest(agent, sequence=sequence, body=b"\n".join(chunk))
            ingested += len(chunk)
            newest[0] = end + shift
            elapsed = time.perf_counter() - began
            if elapsed >= next_sample:
                samples.append({"s": round(elapsed, 1), "events": ingested, **measure()})
                next_sample += args.sample
            if elapsed >= args.seconds:
                break
        copy += 1
    elapsed = time.perf_counter() - began
    stop.set()
    if args.retention:
        pruner.join()  # a pass in flight ends before the stores close
    samples.append({"s": round(elapsed, 1), "events": ingested, **measure()})
    ingestor.close()
    store.close()

    holds = [p["findings"]["longest_hold_s"] for p in passes]  # type: ignore[index]
    holds += [p["graph"]["longest_hold_s"] for p in passes]  # type: ignore[index]
    result = {
        "retention": args.retention,
        "database": "postgresql" if args.db else "sqlite",
        "seconds": round(elapsed, 1),
        "events": ingested,
        "events_per_second": round(ingested / elapsed),
        "data_minutes": round(copy * span / 60e9, 1),
        "bytes_at_end": samples[-1],
        "bytes_max": max(int(s["findings"]) + int(s["graphs"]) for s in samples),  # type: ignore[call-overload]
        "passes": len(passes),
        "pass_seconds_max": max((float(p["duration_s"]) for p in passes), default=0.0),  # type: ignore[arg-type]
        "longest_hold_s": max(holds, default=0.0),
        "samples": samples,
        "reports": passes,
    }
    summary = {k: v for k, v in result.items() if k not in ("samples", "reports")}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
