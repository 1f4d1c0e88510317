"""Graph store benchmark: the same real events into SQLite and into PostgreSQL.

Decodes a dataset's events once, then for each store times ``build_graph`` (builder + store
writes, as ``provarmor ingest`` runs it) into ``--repeat`` fresh stores, reports the best
events/s and the size on disk, and times ``in_edges`` and ``out_edges`` for a fixed random
sample of nodes. A run with a store that discards every delta gives the builder's own share.

    python benchmarks/bench_stores.py --dataset /tmp/datasets/benign-1 \\
        --postgres-url postgresql://provarmor:provarmor-test@127.0.0.1:5432/provarmor_test

The PostgreSQL tables go into a fresh schema that is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from provarmor.evaluation.dataset import load_dataset
from provarmor.graph.builder import GraphDelta
from provarmor.model.event import Event
from provarmor.pipeline.ingest import build_graph
from provarmor.storage.postgres_graph import PostgresGraphStore
from provarmor.storage.sqlite_graph import SqliteGraphStore

DEFAULT_URL = "postgresql://provarmor:provarmor-test@127.0.0.1:5432/provarmor_test"


class DiscardingStore:
    """Takes deltas and keeps nothing: what the builder alone costs."""

    def apply(self, delta: GraphDelta) -> None:
        pass

    def next_edge_id(self) -> int:
        return 1


def timed_ingest(events: list[Event], store: Any, *, batch: int) -> float:
    started = time.perf_counter()
    build_graph(iter(events), store, batch=batch)
    return time.perf_counter() - started


def lookups(store: Any, node_ids: list[str]) -> tuple[float, float, int]:
    """Seconds for ``in_edges`` over all ids, for ``out_edges``, and edges returned."""
    found = 0
    started = time.perf_counter()
    for node_id in node_ids:
        found += len(store.in_edges(node_id))
    middle = time.perf_counter()
    for node_id in node_ids:
        found += len(store.out_edges(node_id))
    return middle - started, time.perf_counter() - middle, found


def postgres_size(url: str, schema: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def report(name: str, *, events: int, seconds: float, size: int | None) -> None:
    sized = f", {size / 1e6:.1f} MB on disk" if size is not None else ""
    print(f"{name:>9}: {events / seconds:>9,.0f} events/s ({seconds:.2f} s){sized}")


@dataclass
class Target:
    """One store under test: how to open a fresh one, measure it, and throw it away."""

    name: str
    open: Callable[[int], Any]
    size: Callable[[int], int]
    drop: Callable[[int], None]


def run_target(target: Target, events: list[Event], *, args: argparse.Namespace) -> None:
    """Best of ``--repeat`` ingests into fresh stores, then lookups in the last one."""
    best = float("inf")
    for attempt in range(args.repeat):
        if attempt:
            target.drop(attempt - 1)
        store = target.open(attempt)
        best = min(best, timed_ingest(events, store, batch=args.batch))
        if attempt < args.repeat - 1:
            store.close()
    report(target.name, events=len(events), seconds=best, size=target.size(args.repeat - 1))
    ids = sorted(node.id for node in store.iter_nodes())
    chosen = random.Random(7).sample(ids, min(args.lookups, len(ids)))
    in_s, out_s, found = lookups(store, chosen)
    print(
        f"{'':>9}  {len(chosen)} in_edges {in_s * 1e3:.0f} ms, {len(chosen)} out_edges "
        f"{out_s * 1e3:.0f} ms ({found} edges; {(in_s + out_s) / (2 * len(chosen)) * 1e6:.0f} "
        "us per lookup)"
    )
    store.close()
    target.drop(args.repeat - 1)


def sqlite_target(scratch: Path) -> Target:
    def path(attempt: int) -> Path:
        return scratch / f"graph-{attempt}.db"

    def drop(attempt: int) -> None:
        for file in scratch.glob(f"graph-{attempt}.db*"):
            file.unlink()

    return Target(
        name="sqlite",
        open=lambda attempt: SqliteGraphStore(path(attempt)),
        size=lambda attempt: sum(f.stat().st_size for f in scratch.glob(f"graph-{attempt}.db*")),
        drop=drop,
    )


def postgres_target(url: str) -> Target:
    prefix = f"bench_{uuid.uuid4().hex[:12]}"

    def drop(attempt: int) -> None:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {prefix}_{attempt} CASCADE")

    return Target(
        name="postgres",
        open=lambda attempt: PostgresGraphStore(url, schema=f"{prefix}_{attempt}"),
        size=lambda attempt: postgres_size(url, f"{prefix}_{attempt}"),
        drop=drop,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=Path("/tmp/datasets/benign-1"))
    parser.add_argument(
        "--postgres-url", default=os.environ.get("PROVARMOR_TEST_POSTGRES_URL", DEFAULT_URL)
    )
    parser.add_argument("--batch", type=int, default=20_000, help="events per store write")
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="ingests per store; best counts")
    args = parser.parse_args()

    started = time.perf_counter()
    events = list(load_dataset(args.dataset).events())
    print(f"{len(events)} events decoded in {time.perf_counter() - started:.1f} s")
    seconds = min(
        timed_ingest(events, DiscardingStore(), batch=args.batch) for _ in range(args.repeat)
    )
    report("builder", events=len(events), seconds=seconds, size=None)
    with tempfile.TemporaryDirectory() as scratch:
        run_target(sqlite_target(Path(scratch)), events, args=args)
    target = postgres_target(args.postgres_url)
    try:
        run_target(target, events, args=args)
    finally:
        for attempt in range(args.repeat):
            target.drop(attempt)


if __name__ == "__main__":
    main()
