import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from provarmor.graph.settings import GraphSettings
from provarmor.model.actions import Action
from provarmor.model.codec import encode_ndjson
from provarmor.model.errors import ConfigError
from provarmor.pipeline.ingest import IngestProgress, build_graph, ingest_file
from provarmor.sources.base import HostContext
from provarmor.storage.sqlite_graph import SqliteGraphStore
from provarmor.testing.factories import make_event


def test_ingest_counts_and_is_idempotent_per_content(tmp_path):
    source = tmp_path / "events.ndjson"
    source.write_bytes(
        encode_ndjson([make_event(Action.WRITE, path=f"/f{i % 3}", ts=i) for i in range(10)])
        + b"not json\n"
    )
    store = SqliteGraphStore(tmp_path / "g.db")
    seen = []
    first = ingest_file(source, format="ndjson", store=store, progress=seen.append)
    assert (first.report.events, first.report.rejected) == (10, 1)
    assert sum(seen) == 10
    assert first.counters.events == 10
    again = ingest_file(source, format="ndjson", store=store)
    assert again.skipped_as_duplicate == str(source)
    assert store.stats().edges_by_action == {"write": 10}
    store.close()


def test_unknown_format_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown format 'pcap'"):
        ingest_file(tmp_path, format="pcap", store=SqliteGraphStore(tmp_path / "g.db"))


def test_build_graph_flushes_in_batches(tmp_path):
    store = SqliteGraphStore(tmp_path / "g.db")
    counters = build_graph(
        (make_event(Action.WRITE, path=f"/f{i}", ts=i) for i in range(25)), store, batch=10
    )
    assert counters.edges_created == 25
    assert store.edge_count() == 25
    store.close()


# ---------------------------------------------------------------- interrupted ingests
BATCH = 2000
ENV = {**os.environ, "PROVARMOR_GRAPH__BATCH_EVENTS": str(BATCH), "COLUMNS": "200"}
ROOT = Path(__file__).resolve().parents[3]


def _recording(path: Path, count: int) -> Path:
    """A few hundred processes, each reading one file in a run (those reads merge into one
    edge), writing another now and then and connecting out: resuming must rebuild the merge
    state exactly to reach the same edges."""
    events = []
    for i in range(count):
        pid, run = 1000 + (i // 40) % 211, i // 40
        if i % 10 == 9:
            event = make_event(Action.WRITE, pid=pid, ts=i, path=f"/out/f{run % 501}")
        elif i % 10 == 4:
            event = make_event(Action.CONNECT, pid=pid, ts=i, ip=f"10.0.0.{run % 13}", port=443)
        else:
            event = make_event(Action.READ, pid=pid, ts=i, path=f"/data/f{run % 3001}")
        events.append(event)
    path.write_bytes(encode_ndjson(events))
    return path


def _shape(db: Path) -> tuple[int, ...]:
    with closing(sqlite3.connect(db)) as con:
        return tuple(
            int(con.execute(query).fetchone()[0] or 0)
            for query in (
                "SELECT count(*) FROM nodes",
                "SELECT count(*) FROM edges",
                "SELECT sum(count) FROM edges",
                "SELECT count(*) FROM event_index",
            )
        )


def _edges_so_far(db: Path) -> int:
    try:
        with closing(sqlite3.connect(db, timeout=0.2)) as con:
            return int(con.execute("SELECT count(*) FROM edges").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet


def _ingest_command(source: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "provarmor", "ingest", str(source), "--format", "ndjson",
            "--db", str(db)]  # fmt: skip


def _reference(source: Path, tmp_path: Path) -> tuple[int, ...]:
    reference = tmp_path / "reference.db"
    store = SqliteGraphStore(reference)
    ingest_file(source, format="ndjson", store=store, settings=GraphSettings(batch_events=BATCH))
    store.close()
    return _shape(reference)


def test_ingest_killed_mid_way_resumes_to_the_graph_of_an_uninterrupted_one(tmp_path):
    source = _recording(tmp_path / "events.ndjson", 80_000)
    expected = _reference(source, tmp_path)
    db = tmp_path / "g.db"
    command = _ingest_command(source, db)
    with subprocess.Popen(command, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL) as first:
        deadline = time.monotonic() + 120
        while _edges_so_far(db) < 2 * BATCH // 4:  # at least two batches committed
            assert first.poll() is None, "the ingest ended before it could be interrupted"
            assert time.monotonic() < deadline, "no batch was written"
            time.sleep(0.01)
        first.kill()  # SIGKILL: no cleanup of any kind
    assert 0 < _shape(db)[1] < expected[1]

    again = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True, check=False)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "resumed" in again.stdout
    assert _shape(db) == expected
    third = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True, check=False)
    assert "already ingested" in third.stdout
    assert _shape(db) == expected


@pytest.fixture
def small_filesystem(tmp_path):
    """A real tmpfs of 1 MiB (grown later by the test); unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_ingest_that_filled_the_disk_resumes_once_there_is_room(tmp_path, small_filesystem):
    source = _recording(tmp_path / "events.ndjson", 40_000)
    expected = _reference(source, tmp_path)
    db = small_filesystem / "g.db"
    command = _ingest_command(source, db)

    full = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True, check=False)

    assert full.returncode != 0
    assert "full" in full.stdout + full.stderr
    assert 0 < _shape(db)[1] < expected[1]
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_filesystem)], check=True)
    again = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _shape(db) == expected


def test_an_import_that_rejected_everything_is_not_recorded(tmp_path):
    source = tmp_path / "events.ndjson"
    source.write_bytes(encode_ndjson([make_event(Action.WRITE, path="/f", ts=1)]))
    store = SqliteGraphStore(tmp_path / "g.db")
    wrong = ingest_file(source, format="sysdig", store=store)
    assert (wrong.report.events, wrong.report.rejected) == (0, 1)
    right = ingest_file(source, format="ndjson", store=store)
    assert (right.skipped_as_duplicate, right.report.events) == ("", 1)
    assert ingest_file(source, format="ndjson", store=store).skipped_as_duplicate == str(source)
    store.close()


def _interrupted(source: Path, store: SqliteGraphStore, *, host: str, after: int) -> None:
    """An ingest stopped by Ctrl-C after ``after`` batches."""

    def stop(_count: int, seen: list[int] = []) -> None:  # noqa: B006  (call counter)
        seen.append(1)
        if len(seen) >= after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_file(
            source,
            format="ndjson",
            store=store,
            host=HostContext(id=host),
            settings=GraphSettings(batch_events=BATCH),
            progress=stop,
        )


def test_resume_needs_the_same_host_and_an_unchanged_store(tmp_path):
    source = _recording(tmp_path / "events.ndjson", 12_000)
    expected = _reference(source, tmp_path)
    store = SqliteGraphStore(tmp_path / "g.db")
    _interrupted(source, store, host="h1", after=3)
    settings = GraphSettings(batch_events=BATCH)

    with pytest.raises(ConfigError, match="with --host h1 is pending"):
        ingest_file(source, format="ndjson", store=store, host=HostContext(id="h2"))
    resumed = ingest_file(
        source, format="ndjson", store=store, host=HostContext(id="h1"), settings=settings
    )
    assert resumed.resumed_batches == 3
    store.close()
    assert _shape(tmp_path / "g.db") == expected

    other = SqliteGraphStore(tmp_path / "other.db")
    _interrupted(source, other, host="h1", after=2)
    ingest_file(_recording(tmp_path / "more.ndjson", 10), format="ndjson", store=other)
    with pytest.raises(ConfigError, match="has changed since an interrupted ingest"):
        ingest_file(source, format="ndjson", store=other, host=HostContext(id="h1"))
    other.close()


def test_progress_record_of_version_1_reads():
    data = (ROOT / "tests" / "data" / "storage" / "ingest-progress-v1.json").read_bytes()
    progress = msgspec.json.decode(data, type=IngestProgress)
    assert (progress.version, progress.host, progress.batches) == (1, "vm1", 3)
    assert (progress.first_edge_id, progress.next_edge_id) == (1, 4211)
