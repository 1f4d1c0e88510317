import contextlib
import dataclasses
import errno
import gzip
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.ingest import (
    BatchTooLarge,
    Ingestor,
    StoredBatch,
    Upload,
    UploadResult,
    event_row,
    graph_opener,
    parse_batch,
)
from provarmor.manager.store import (
    AgentRecord,
    AlertQuery,
    EventQuery,
    IncidentQuery,
    Page,
    TokenRecord,
)
from provarmor.model.codec import parse_json_event
from provarmor.model.errors import ParseError
from provarmor.outputs.alert_formats import AlertFormat
from provarmor.outputs.incident_formats import IncidentFormat
from provarmor.storage.sqlite_graph import SqliteGraphStore

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


@pytest.fixture(scope="module")
def lines():
    return gzip.decompress(LAB.read_bytes()).splitlines(keepends=True)


def test_parse_batch_keeps_order_and_skips_blank_lines(lines):
    events = parse_batch(lines[0] + b"\n\n" + lines[1], host_id=HOST, max_events=10)
    assert [e.event.id for e in events] == [
        parse_json_event(lines[0]).event.id,
        parse_json_event(lines[1]).event.id,
    ]


def test_parse_batch_names_the_bad_line(lines):
    with pytest.raises(ParseError) as caught:
        parse_batch(lines[0] + b"\n" + b"[1, 2]\n", host_id=HOST, max_events=10)
    assert caught.value.location == "batch:3"


def test_parse_batch_refuses_another_host(lines):
    with pytest.raises(ParseError, match="uploaded by an agent of host 'h2'") as caught:
        parse_batch(lines[0], host_id="h2", max_events=10)
    assert caught.value.location == "batch:1"


def test_parse_batch_counts_events_against_the_limit(lines):
    with pytest.raises(BatchTooLarge):
        parse_batch(b"".join(lines[:4]), host_id=HOST, max_events=3)


def test_event_row_indexes_network_and_file_fields(lines):
    events = [parse_json_event(line) for line in lines]
    connect = next(e for e in events if e.destination is not None and e.destination.ip)
    row = event_row(connect, keep_json=False)
    assert row.remote == f"{connect.destination.ip}:{connect.destination.port}"
    assert row.json == ""
    opened = next(e for e in events if e.file is not None)
    assert event_row(opened, keep_json=True).file_path == opened.file.path


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_only_raises_parse_errors(data):
    with contextlib.suppress(ParseError, BatchTooLarge):
        parse_batch(data, host_id=HOST, max_events=5)


# A real failure: the disk under the graph or the findings store fills up mid-upload.


@pytest.fixture
def small_disk(tmp_path):
    """A 5 MiB tmpfs mounted for the test (needs root, as the project's tests run): room for
    every upload of the capture (the findings store's WAL holds them all), which fails only
    while the filler takes the rest."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(directory: Path) -> Path:
    """Take every free byte of ``directory``'s filesystem; the file to delete to free them."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out, pytest.raises(OSError) as full:
        _write_forever(out)
    assert full.value.errno == errno.ENOSPC
    return filler


def _write_forever(out) -> None:
    while True:
        out.write(b"\0" * 65536)


# (first line, last line) of each upload: a small first batch, then one too big for the WAL
# space the first left behind, then the rest.
SPLITS = [(0, 100), (100, 700), (700, 1300), (1300, 2142)]


def _upload(manager, agent_id, credential, lines, split):
    start, end = split
    return manager.upload(agent_id, credential, sequence=end, body=b"".join(lines[start:end]))


def _graph(manager):
    store = manager.client.app.state.context.ingestor.host(HOST).store
    edges = list(store.iter_edges())
    return {
        "events_in_edges": sum(edge.count for edge in edges),
        "first_events": len({edge.first_event for edge in edges}),
        "edges": len(edges),
        "indexed": store.stats().events_indexed,
    }


def _findings(manager):
    alerts = manager.get("/alerts", limit=1000).json()
    return manager.get("/hosts").json()[0]["events"], sorted(a["id"] for a in alerts)


@pytest.fixture
def reference(make_manager, tmp_path, lines):
    """Graph and findings of the same uploads on a disk with room."""
    manager = make_manager(tmp_path / "reference")
    agent_id, credential = manager.enroll()
    for split in SPLITS:
        assert _upload(manager, agent_id, credential, lines, split).status_code == 200
    return _graph(manager), _findings(manager)


def test_failed_graph_write_rolls_back_and_later_uploads_succeed(
    make_manager, small_disk, reference, lines
):
    manager = make_manager(small_disk)
    agent_id, credential = manager.enroll()
    assert _upload(manager, agent_id, credential, lines, SPLITS[0]).status_code == 200
    filler = _fill(small_disk)
    failed = _upload(manager, agent_id, credential, lines, SPLITS[1])
    assert failed.status_code == 503, failed.text
    filler.unlink()
    for split in SPLITS[1:]:
        answer = _upload(manager, agent_id, credential, lines, split)
        assert answer.status_code == 200, answer.text
        assert answer.json()["duplicate"] is False
    # every event is in the graph once: the same edges as without the failure (the builder
    # restarted after it, which here cuts no flow's edge differently)
    assert _graph(manager) == reference[0]
    # the detectors never saw the failed batch: the same events and alerts
    assert _findings(manager) == reference[1]


def test_failed_findings_commit_leaves_no_duplicate_edges(
    make_manager, small_disk, reference, lines, tmp_path
):
    manager = make_manager(tmp_path / "state", database=small_disk / "manager.db")
    agent_id, credential = manager.enroll()
    assert _upload(manager, agent_id, credential, lines, SPLITS[0]).status_code == 200
    filler = _fill(small_disk)
    failed = _upload(manager, agent_id, credential, lines, SPLITS[1])
    assert failed.status_code == 503, failed.text
    filler.unlink()
    for split in SPLITS[1:]:
        answer = _upload(manager, agent_id, credential, lines, split)
        assert answer.status_code == 200, answer.text
    assert _graph(manager) == reference[0]
    assert _findings(manager) == reference[1]


# The same on both engines, the failure a real database error raised inside the store's
# transaction (a trigger in SQLite, a CHECK constraint in PostgreSQL) on the graph's edges or
# the findings' events.


@contextlib.contextmanager
def _refusing_inserts(manager, side: str):
    if manager.kind == "sqlite":
        if side == "graph":
            path = manager.client.app.state.context.ingestor.host(HOST).store.path
        else:
            path = manager.settings.database_url.removeprefix("sqlite:///")
        table = "edges" if side == "graph" else "events"
        with sqlite3.connect(path) as db:
            db.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        yield
        with sqlite3.connect(path) as db:
            db.execute("DROP TRIGGER refuse")
        return
    import psycopg

    from provarmor.storage.postgres_dialect import split_schema

    base, findings_schema = split_schema(manager.settings.database_url)
    if side == "graph":
        table = f'"{manager.client.app.state.context.ingestor.host(HOST).store.schema}".edges'
    else:
        table = f'"{findings_schema}".events'
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK (false) NOT VALID")
    yield
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"ALTER TABLE {table} DROP CONSTRAINT refuse")


@pytest.mark.parametrize("side", ["graph", "findings"])
def test_a_failed_write_on_either_side_loses_and_duplicates_nothing(
    manager, reference, lines, side
):
    agent_id, credential = manager.enroll()
    assert _upload(manager, agent_id, credential, lines, SPLITS[0]).status_code == 200
    ingestor = manager.client.app.state.context.ingestor
    with _refusing_inserts(manager, side):
        answer = _upload(manager, agent_id, credential, lines, SPLITS[1])
        if side == "findings":
            assert answer.status_code == 503, answer.text
            assert "refuse" in answer.json()["error"]
        else:  # findings and checkpoint stored; the graph writes wait for the next one
            assert answer.status_code == 200, answer.text
            assert ingestor.checkpoints.graph_failed == 1
            assert ingestor.host(HOST).graph.pending
    for split in SPLITS[1 if side == "findings" else 2 :]:
        answer = _upload(manager, agent_id, credential, lines, split)
        assert answer.status_code == 200, answer.text
    assert _graph(manager) == reference[0]
    assert _findings(manager) == reference[1]


def test_restart_after_a_failed_findings_commit_stores_the_events_once(
    make_manager, small_disk, reference, lines, tmp_path
):
    state, database = tmp_path / "state", small_disk / "manager.db"
    manager = make_manager(state, database=database)
    agent_id, credential = manager.enroll()
    assert _upload(manager, agent_id, credential, lines, SPLITS[0]).status_code == 200
    filler = _fill(small_disk)
    assert _upload(manager, agent_id, credential, lines, SPLITS[1]).status_code == 503
    filler.unlink()
    restarted = make_manager(state, database=database)  # the unstored findings are gone
    for split in SPLITS[1:]:
        answer = _upload(restarted, agent_id, credential, lines, split)
        assert answer.status_code == 200, answer.text
    # every event is in the graph once; the restarted builder may cut a flow's edge anew
    graph = _graph(restarted)
    assert graph["events_in_edges"] == reference[0]["events_in_edges"]
    assert graph["indexed"] == reference[0]["indexed"]
    events, alerts = _findings(restarted)
    assert events == reference[1][0] == len(lines)
    assert set(alerts) <= set(reference[1][1])  # the lost batch's alerts are missing, no more


# Outputs: every committed finding also goes to the files the settings name, once.


def test_committed_findings_reach_the_outputs_once(make_manager, tmp_path, lines):
    manager = make_manager(
        tmp_path / "state",
        alerts_out=tmp_path / "alerts.jsonl",
        alert_format=AlertFormat("ocsf"),
        incidents_out=tmp_path / "stories",
        incident_format=IncidentFormat("svg"),
    )
    agent_id, credential = manager.enroll()
    for split in SPLITS:
        assert _upload(manager, agent_id, credential, lines, split).status_code == 200
    written = (tmp_path / "alerts.jsonl").read_text()
    again = _upload(manager, agent_id, credential, lines, SPLITS[-1])
    assert again.json()["duplicate"] is True
    assert (tmp_path / "alerts.jsonl").read_text() == written  # a re-sent batch adds nothing

    findings = [json.loads(line) for line in written.splitlines()]
    stored = manager.get("/alerts", limit=1000).json()
    assert stored
    assert sorted(f["metadata"]["uid"] for f in findings) == sorted(a["id"] for a in stored)
    assert {f["class_uid"] for f in findings} == {2004}
    assert {f["device"]["uid"] for f in findings} == {HOST}
    incidents = manager.get("/incidents").json()
    assert incidents
    assert sorted(path.name for path in (tmp_path / "stories").iterdir()) == sorted(
        f"{incident['id']}.svg" for incident in incidents
    )


def test_an_output_on_a_full_disk_is_counted_and_the_findings_are_stored(
    make_manager, small_disk, tmp_path, lines
):
    manager = make_manager(tmp_path / "state", alerts_out=small_disk / "alerts.jsonl")
    agent_id, credential = manager.enroll()
    filler = _fill(small_disk)
    for split in SPLITS:
        answer = _upload(manager, agent_id, credential, lines, split)
        assert answer.status_code == 200, answer.text
    stored = manager.get("/alerts", limit=1000).json()
    assert stored
    assert (small_disk / "alerts.jsonl").read_bytes() == b""
    metrics = manager.client.get("/metrics").text
    assert f"provarmor_manager_output_failures_total {float(len(stored))}" in metrics
    filler.unlink()
    fresh = manager.enroll(host_id="another-host")
    body = b"".join(lines[: SPLITS[1][1]]).replace(HOST.encode(), b"another-host")
    assert _upload(manager, *fresh, [body], (0, 1)).status_code == 200
    written = (small_disk / "alerts.jsonl").read_text().splitlines()
    assert written and all(json.loads(line)["host"]["id"] == "another-host" for line in written)


# Checkpoints: a restarted manager goes on with each host's analysis as if never stopped.

RESTART_SPLITS = [(start, min(start + 150, 2142)) for start in range(0, 2142, 150)]
"""Fifteen uploads of the lab capture: the restart falls in the middle of the attack."""


def _outcome(manager):
    """What the uploads came to, as the API shows it: every alert row, and every incident
    (its whole story, with its id, version and alerts), its host tag written ``TAG``."""
    alerts = manager.get("/alerts", limit=1000).json()
    tag = manager.client.app.state.context.ingestor.host(HOST).tag
    incidents = [
        manager.get(f"/incidents/{summary['id']}").json()
        for summary in manager.get("/incidents", limit=1000).json()
    ]
    ids = [alert["id"] for alert in alerts]
    return {
        "alerts": sorted(ids),
        "alert_rows": len(ids),
        "incidents": sorted(json.dumps(i, sort_keys=True).replace(tag, "TAG") for i in incidents),
        "events": manager.get("/hosts").json()[0]["events"],
    }


def _upload_all(manager, agent_id, credential, lines, splits):
    for split in splits:
        answer = _upload(manager, agent_id, credential, lines, split)
        assert answer.status_code == 200, answer.text


@pytest.fixture
def uninterrupted(make_manager, tmp_path, lines):
    manager = make_manager(tmp_path / "uninterrupted")
    agent_id, credential = manager.enroll()
    _upload_all(manager, agent_id, credential, lines, RESTART_SPLITS)
    return manager, agent_id


def _same_incidents_as(uninterrupted, restarted):
    """The restarted manager's findings equal the uninterrupted one's (incident ids up to the
    tag, random per analysis: the restarted one keeps its first)."""
    expected, found = _outcome(uninterrupted[0]), _outcome(restarted)
    assert found == expected
    assert expected["incidents"], "the lab capture makes an incident"


def test_a_killed_manager_restores_each_hosts_analysis(
    make_manager, uninterrupted, tmp_path, lines
):
    state = tmp_path / "state"
    first = make_manager(state)
    agent_id, credential = first.enroll()
    _upload_all(first, agent_id, credential, lines, RESTART_SPLITS[:7])
    tag = first.client.app.state.context.ingestor.host(HOST).tag
    # killed: never closed (the next one opens the same stores while this one holds them)
    restarted = make_manager(state)
    _upload_all(restarted, agent_id, credential, lines, RESTART_SPLITS[7:])
    ingestor = restarted.client.app.state.context.ingestor
    assert ingestor.host(HOST).tag == tag
    assert (ingestor.checkpoints.restored, ingestor.checkpoints.rebuilt) == (1, 0)
    _same_incidents_as(uninterrupted, restarted)


def test_without_checkpoints_a_restart_splits_the_incident(
    make_manager, uninterrupted, tmp_path, lines
):
    """What the checkpoints are for: a restarted analysis without one opens a new incident
    for the rest of the attack."""
    state = tmp_path / "state"
    first = make_manager(state, checkpoints=False)
    agent_id, credential = first.enroll()
    _upload_all(first, agent_id, credential, lines, RESTART_SPLITS[:7])
    restarted = make_manager(state, checkpoints=False)
    _upload_all(restarted, agent_id, credential, lines, RESTART_SPLITS[7:])
    incidents = _outcome(restarted)["incidents"]
    assert len(incidents) > len(_outcome(uninterrupted[0])["incidents"])


def test_restart_after_a_failed_findings_commit_analyses_the_batch_exactly(
    make_manager, small_disk, lines, tmp_path
):
    """The graph holds one batch more than the checkpoint: the restored analysis takes it
    again without writing its graph delta twice, and loses none of its alerts (the four
    uploads of ``SPLITS``: the 5 MiB disk holds the WAL of those)."""
    reference = make_manager(tmp_path / "reference")
    reference_agent = reference.enroll()
    _upload_all(reference, *reference_agent, lines, SPLITS)
    state, database = tmp_path / "state", small_disk / "manager.db"
    first = make_manager(state, database=database)
    agent_id, credential = first.enroll()
    _upload_all(first, agent_id, credential, lines, SPLITS[:1])
    filler = _fill(small_disk)
    assert _upload(first, agent_id, credential, lines, SPLITS[1]).status_code == 503
    filler.unlink()
    restarted = make_manager(state, database=database)
    _upload_all(restarted, agent_id, credential, lines, SPLITS[1:])
    assert restarted.client.app.state.context.ingestor.checkpoints.restored == 1
    _same_incidents_as((reference, reference_agent), restarted)
    assert _graph_of(restarted) == _graph_of(reference)


def _graph_of(manager):
    store = manager.client.app.state.context.ingestor.host(HOST).store
    edges = sorted(
        (e.id, e.src, e.dst, e.action, e.count, e.first_ts, e.last_ts) for e in store.iter_edges()
    )
    return edges, store.stats().events_indexed


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:-100], "damaged checkpoint"),
        (lambda data: b"not json\n" + data, "unreadable checkpoint header"),
        (
            lambda data: data.replace(b'"format":2', b'"format":9', 1),
            "checkpoint format 9",
        ),
        (lambda data: data.replace(b'"build":"', b'"build":"0', 1), "written by another build"),
    ],
)
def test_a_bad_checkpoint_is_counted_and_the_analysis_rebuilt(
    make_manager, tmp_path, lines, caplog, damage, reason
):
    state = tmp_path / "state"
    first = make_manager(state)
    agent_id, credential = first.enroll()
    _upload_all(first, agent_id, credential, lines, RESTART_SPLITS[:3])
    path = state / "m.db"
    with sqlite3.connect(path) as db:
        (data,) = db.execute("SELECT data FROM checkpoints").fetchone()
        db.execute("UPDATE checkpoints SET data = ?", (damage(data),))
    restarted = make_manager(state)
    _upload_all(restarted, agent_id, credential, lines, RESTART_SPLITS[3:])
    counters = restarted.client.app.state.context.ingestor.checkpoints
    assert (counters.restored, counters.rebuilt) == (0, 1)
    assert any(reason in record.getMessage() for record in caplog.records), caplog.text
    assert any("rebuilt from its graph" in record.getMessage() for record in caplog.records)
    outcome = _outcome(restarted)
    assert outcome["events"] == len(lines)
    assert outcome["alert_rows"] == len(set(outcome["alerts"]))  # nothing twice


def test_a_host_that_comes_back_is_analysed_from_the_other_process_checkpoint(
    make_manager, uninterrupted, tmp_path, lines
):
    """Two processes over one store take turns with a host (workers whose partitions moved):
    the one that gets the host back sees that batches were stored without it and opens the
    host's analysis again from the checkpoint, rather than going on with its stale one."""
    state = tmp_path / "state"
    first, second = make_manager(state), make_manager(state)
    agent_id, credential = first.enroll()
    _upload_all(first, agent_id, credential, lines, RESTART_SPLITS[:5])
    _upload_all(second, agent_id, credential, lines, RESTART_SPLITS[5:10])
    _upload_all(first, agent_id, credential, lines, RESTART_SPLITS[10:])
    assert first.client.app.state.context.ingestor.checkpoints.restored == 1
    _same_incidents_as(uninterrupted, first)


def test_batches_stored_without_checkpoints_make_the_old_one_unusable(
    make_manager, tmp_path, lines, caplog
):
    """A manager with checkpoints off in between: the checkpoint of before no longer matches
    the graph and the findings, so the next one rebuilds (counted) instead of restoring it."""
    state = tmp_path / "state"
    first = make_manager(state)
    agent_id, credential = first.enroll()
    _upload_all(first, agent_id, credential, lines, RESTART_SPLITS[:3])
    without = make_manager(state, checkpoints=False)
    _upload_all(without, agent_id, credential, lines, RESTART_SPLITS[3:6])
    last = make_manager(state)
    _upload_all(last, agent_id, credential, lines, RESTART_SPLITS[6:])
    counters = last.client.app.state.context.ingestor.checkpoints
    assert (counters.restored, counters.rebuilt) == (0, 1)
    assert "stored without a checkpoint" in caplog.text
    outcome = _outcome(last)
    assert outcome["events"] == len(lines)
    assert outcome["alert_rows"] == len(set(outcome["alerts"]))


# Checkpoints every few batches (a worker's way): the batches after the last checkpoint come
# again from the replay source, the bus's stream in a worker, here the uploads kept in order.

EVERY = 4
"""Batches per checkpoint: with RESTART_SPLITS a host is checkpointed after batches 1, 5, 9
and 13 (the first batch of a fresh analysis carries one)."""


class _Stream:
    """The batches as a stream keeps them (a replay source): position = index + 1."""

    def __init__(self, lines) -> None:
        self.batches = [
            StoredBatch(
                position=index + 1,
                agent_id="",
                sequence=end,
                body=b"".join(lines[start:end]),
            )
            for index, (start, end) in enumerate(RESTART_SPLITS)
        ]
        self.agent_id = ""

    def __call__(self, host_id: str, position: int):
        assert host_id == HOST
        for batch in self.batches[position:]:
            yield dataclasses.replace(batch, agent_id=self.agent_id)


class _Worker:
    """An ingestor as a worker runs it (replay source, checkpoints every EVERY batches)."""

    def killed(self) -> None:
        """What the kernel does for a killed process: its connections go (nothing is
        written on the way)."""
        for host in self.ingestor.loaded_hosts():
            host.store.close()

    def __init__(
        self, url: str, store, kit, state: Path, stream: _Stream, *, replay: bool = True
    ) -> None:
        self.store = store
        self.ingestor = Ingestor(
            store,
            kit=kit,
            open_graph=graph_opener(database_url=url, state_dir=state),
            max_batch_events=10_000,
            models_dir=state / "models",
            replay=stream if replay else None,
            checkpoint_batches=EVERY,
            checkpoint_seconds=3600,
        )
        self.stream = stream

    def take(self, batches: range) -> None:
        agent = self.store.agent(self.stream.agent_id)
        for index in batches:
            batch = self.stream.batches[index]
            self.ingestor.ingest(
                agent, sequence=batch.sequence, body=batch.body, position=batch.position
            )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def findings_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'findings.db'}"
    return request.getfixturevalue("postgres_database")


def _enrolled(url: str, stream: _Stream):
    store = open_findings_store(url)
    now = time.time_ns()
    stream.agent_id = "agent-1"
    store.add_agent(
        AgentRecord(id="agent-1", host_id=HOST, hostname="lab", enrolled_ns=now),
        credential=TokenRecord(id="agent-1", role=Role.AGENT, salt="s", digest="d", created_ns=now),
    )
    return store


def _stored(store, tag: str):
    """Every alert id, and every incident row (its tag written TAG), of the host."""
    alerts = sorted(a.id for a in store.alerts(AlertQuery(host=HOST, page=Page(limit=10_000))))
    incidents = sorted(
        (row.id.replace(tag, "TAG"), row.version, row.json.replace(tag, "TAG"))
        for row in store.incidents(IncidentQuery(host=HOST, page=Page(limit=1000)))
    )
    return alerts, incidents


@pytest.fixture
def grouped_reference(kit, tmp_path, lines):
    """The uploads analysed without interruption, checkpointed every EVERY batches."""
    stream = _Stream(lines)
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    store = _enrolled(url, stream)
    worker = _Worker(url, store, kit, tmp_path / "reference", stream)
    worker.take(range(len(RESTART_SPLITS)))
    found = _stored(store, worker.ingestor.host(HOST).tag)
    worker.ingestor.close()
    store.close()
    assert found[1], "the lab capture makes an incident"
    return found


def test_a_worker_killed_between_two_checkpoints_goes_on_exactly(
    kit, tmp_path, lines, findings_url, grouped_reference
):
    """Killed after batch 7 (checkpoint at 5): the next ingestor restores the checkpoint,
    analyses batches 6 and 7 again from the stream without storing them twice, and goes on
    with the same incident (id, versions, story) and alerts as the uninterrupted run."""
    stream = _Stream(lines)
    store = _enrolled(findings_url, stream)
    first = _Worker(findings_url, store, kit, tmp_path / "state", stream)
    first.take(range(7))
    tag = first.ingestor.host(HOST).tag
    assert first.ingestor.host(HOST).graph.pending, "batches 6 and 7 wait for a checkpoint"
    # killed: never closed
    second = _Worker(findings_url, store, kit, tmp_path / "state", stream)
    second.take(range(7, len(RESTART_SPLITS)))
    counters = second.ingestor.checkpoints
    assert (counters.restored, counters.rebuilt, counters.replayed) == (1, 0, 2)
    assert second.ingestor.host(HOST).tag == tag
    assert _stored(store, tag) == grouped_reference
    first.killed()
    second.ingestor.close()
    store.close()


def test_without_a_replay_source_a_checkpoint_behind_the_store_is_rebuilt(
    kit, tmp_path, lines, caplog
):
    stream = _Stream(lines)
    url = f"sqlite:///{tmp_path / 'findings.db'}"
    store = _enrolled(url, stream)
    first = _Worker(url, store, kit, tmp_path / "state", stream)
    first.take(range(7))
    second = _Worker(url, store, kit, tmp_path / "state", stream, replay=False)
    second.take(range(7, 8))
    counters = second.ingestor.checkpoints
    assert (counters.restored, counters.rebuilt) == (0, 1)
    assert "there is no source to replay them" in caplog.text
    first.killed()
    second.ingestor.close()
    store.close()


def test_graph_writes_that_failed_after_their_checkpoint_are_written_on_restore(
    kit, tmp_path, lines, grouped_reference
):
    """The graph store refuses the writes that follow checkpoint 5 (as a crash between the
    checkpoint's commit and the flush would leave them): the restored checkpoint carries them
    and writes them, and the rest goes on as without the failure."""
    stream = _Stream(lines)
    url = f"sqlite:///{tmp_path / 'findings.db'}"
    store = _enrolled(url, stream)
    first = _Worker(url, store, kit, tmp_path / "state", stream)
    first.take(range(4))
    graph_path = first.ingestor.host(HOST).store.path
    with sqlite3.connect(graph_path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON edges "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    first.take(range(4, 6))
    assert first.ingestor.checkpoints.graph_failed == 1
    with sqlite3.connect(graph_path) as db:
        db.execute("DROP TRIGGER refuse")
    second = _Worker(url, store, kit, tmp_path / "state", stream)
    second.take(range(6, len(RESTART_SPLITS)))
    assert second.ingestor.checkpoints.restored == 1
    assert _stored(store, first.ingestor.host(HOST).tag) == grouped_reference
    restored = second.ingestor.host(HOST)
    second.ingestor.settle(restored)
    reference = SqliteGraphStore(tmp_path / "reference" / "graphs" / Path(graph_path).name)
    assert sorted(map(tuple_of, restored.store.iter_edges())) == sorted(
        map(tuple_of, reference.iter_edges())
    )
    reference.close()
    first.killed()
    second.ingestor.close()
    store.close()


def tuple_of(edge):
    return msgspec.structs.astuple(edge)


# A worker's fetches: many batches (of several hosts) in one ingest_many, one commit.

HOST_B = "5e7b0c1a9d2f4e6b8a3c1d0f2e4b6a8c"


class _Fleet:
    """Hosts' batches interleaved as one stream keeps them (the replay source): position =
    index + 1, each batch naming where its agent's batch before it ended (``after``)."""

    def __init__(self, hosts: dict[str, tuple[str, list[bytes]]]) -> None:
        """``hosts``: host id -> (agent id, the host's lines)."""
        self.batches: list[tuple[str, StoredBatch]] = []
        for start, end in RESTART_SPLITS:
            for host_id, (agent_id, host_lines) in hosts.items():
                stored = StoredBatch(
                    position=len(self.batches) + 1,
                    agent_id=agent_id,
                    sequence=end,
                    body=b"".join(host_lines[start:end]),
                    after=start,
                )
                self.batches.append((host_id, stored))
        self.missing: set[int] = set()
        """Positions the stream no longer has (dropped when full)."""

    def __call__(self, host_id: str, position: int):
        for host, stored in self.batches[position:]:
            if host == host_id and stored.position not in self.missing:
                yield stored

    def uploads(self, store, positions) -> list[Upload]:
        taken = [self.batches[position - 1][1] for position in positions]
        return [
            Upload(
                agent=store.agent(stored.agent_id),
                sequence=stored.sequence,
                body=stored.body,
                position=stored.position,
                after=stored.after,
            )
            for stored in taken
        ]


def _fleet_store(url: str, hosts: dict[str, str]):
    """A findings store with one agent enrolled per host (host id -> agent id)."""
    store = open_findings_store(url)
    now = time.time_ns()
    for host_id, agent_id in hosts.items():
        store.add_agent(
            AgentRecord(id=agent_id, host_id=host_id, hostname=host_id[:6], enrolled_ns=now),
            credential=TokenRecord(
                id=agent_id, role=Role.AGENT, salt="s", digest="d", created_ns=now
            ),
        )
    return store


def _fleet_ingestor(url: str, store, kit, state: Path, fleet: _Fleet) -> Ingestor:
    return Ingestor(
        store,
        kit=kit,
        open_graph=graph_opener(database_url=url, state_dir=state),
        max_batch_events=10_000,
        models_dir=state / "models",
        replay=fleet,
        checkpoint_batches=EVERY,
        checkpoint_seconds=3600,
    )


def _versions(found):
    """Alert ids, and each incident's id, version and alerts (its story is built once per
    run of a fetch: it may show more of the graph than one built after each batch)."""
    alerts, incidents = found
    return alerts, [
        (incident_id, version, sorted(json.loads(story)["alert_ids"]))
        for incident_id, version, story in incidents
    ]


def _one_host(lines) -> _Fleet:
    return _Fleet({HOST: ("agent-1", lines)})


def _events_once(store, host_id: str) -> None:
    rows = store.search_events(EventQuery(host=host_id, page=Page(limit=10_000)))
    assert len(rows) == len({row.event_id for row in rows}) == RESTART_SPLITS[-1][1]


def test_a_fetch_mixing_hosts_analyses_each_host_in_order_as_alone(
    kit, tmp_path, lines, findings_url, grouped_reference
):
    """Two hosts' batches interleaved, in fetches of 7 (each host's runs split differently
    from fetch to fetch): every batch stored once, and each host's alerts and incidents
    (ids, versions, alerts) are those of its batches analysed one at a time."""
    other = [line.replace(HOST.encode(), HOST_B.encode()) for line in lines]
    fleet = _Fleet({HOST: ("agent-1", lines), HOST_B: ("agent-2", other)})
    store = _fleet_store(findings_url, {HOST: "agent-1", HOST_B: "agent-2"})
    ingestor = _fleet_ingestor(findings_url, store, kit, tmp_path / "state", fleet)
    positions = range(1, len(fleet.batches) + 1)
    results = []
    for first in range(0, len(positions), 7):
        results += ingestor.ingest_many(fleet.uploads(store, positions[first : first + 7]))
    assert all(isinstance(r, UploadResult) and not r.duplicate for r in results), results
    tags = {host_id: ingestor.host(host_id).tag for host_id in (HOST, HOST_B)}
    assert _versions(_stored(store, tags[HOST])) == _versions(grouped_reference)
    alerts_b = sorted(a.id for a in store.alerts(AlertQuery(host=HOST_B, page=Page(limit=10_000))))
    assert alerts_b == grouped_reference[0]
    incidents_b = store.incidents(IncidentQuery(host=HOST_B, page=Page(limit=1000)))
    assert sorted((i.engine_id, i.version) for i in incidents_b) == sorted(
        (i[0].removesuffix("-TAG"), i[1]) for i in grouped_reference[1]
    )
    for host_id in (HOST, HOST_B):
        _events_once(store, host_id)
    ingestor.close()
    store.close()


def test_a_fetch_delivered_again_after_its_commit_is_stored_once(
    kit, tmp_path, lines, findings_url, grouped_reference
):
    """The worker commits a fetch and is killed before it acknowledges it (the last three
    batches after the host's checkpoint): the bus delivers the fetch again, with the next
    batches, to the next worker, which restores the checkpoint, takes those three again from
    the stream, answers the fetch as duplicates and goes on exactly."""
    fleet = _one_host(lines)
    store = _fleet_store(findings_url, {HOST: "agent-1"})
    first = _fleet_ingestor(findings_url, store, kit, tmp_path / "state", fleet)
    first.ingest_many(fleet.uploads(store, range(1, 6)))  # a fresh host's first run: checkpointed
    first.ingest_many(fleet.uploads(store, range(6, 9)))  # committed, never acknowledged
    tag = first.host(HOST).tag
    # killed: never closed
    second = _fleet_ingestor(findings_url, store, kit, tmp_path / "state", fleet)
    again = second.ingest_many(fleet.uploads(store, range(6, 12)))
    assert [isinstance(r, UploadResult) and r.duplicate for r in again] == [True] * 3 + [False] * 3
    second.ingest_many(fleet.uploads(store, range(12, len(fleet.batches) + 1)))
    assert (second.checkpoints.restored, second.checkpoints.replayed) == (1, 3)
    assert second.host(HOST).tag == tag
    assert _versions(_stored(store, tag)) == _versions(grouped_reference)
    _events_once(store, HOST)
    for ingestor in (first, second):
        for host in ingestor.loaded_hosts():
            host.store.close()
    store.close()


def test_batches_delivered_out_of_order_are_taken_from_the_stream_first(
    kit, tmp_path, lines, findings_url, grouped_reference
):
    """After a kill, JetStream re-sends the killed worker's unacknowledged batches only
    after their ack wait, and the next ones come first: the batch that follows a gap in its
    agent's sequence has the batches in between taken from the stream first, and the late
    ones are then answered as duplicates."""
    fleet = _one_host(lines)
    store = _fleet_store(findings_url, {HOST: "agent-1"})
    ingestor = _fleet_ingestor(findings_url, store, kit, tmp_path / "state", fleet)
    ingestor.ingest_many(fleet.uploads(store, range(1, 4)))
    (ahead,) = ingestor.ingest_many(fleet.uploads(store, [6]))
    assert isinstance(ahead, UploadResult)
    assert (ahead.duplicate, ahead.filled, ahead.lost) == (False, 2, 0)
    late = ingestor.ingest_many(fleet.uploads(store, [4, 5]))
    assert all(isinstance(r, UploadResult) and r.duplicate for r in late)
    ingestor.ingest_many(fleet.uploads(store, range(7, len(fleet.batches) + 1)))
    assert _versions(_stored(store, ingestor.host(HOST).tag)) == _versions(grouped_reference)
    _events_once(store, HOST)
    ingestor.close()
    store.close()


def test_a_gap_the_stream_no_longer_has_is_counted_lost(kit, tmp_path, lines):
    """The stream dropped batch 4 (full): the batch after the gap takes batch 5 from the
    stream and reports batch 4's events lost; everything else is stored."""
    fleet = _one_host(lines)
    fleet.missing = {4}
    url = f"sqlite:///{tmp_path / 'findings.db'}"
    store = _fleet_store(url, {HOST: "agent-1"})
    ingestor = _fleet_ingestor(url, store, kit, tmp_path / "state", fleet)
    ingestor.ingest_many(fleet.uploads(store, range(1, 4)))
    (ahead,) = ingestor.ingest_many(fleet.uploads(store, [6]))
    assert isinstance(ahead, UploadResult)
    start, end = RESTART_SPLITS[3]
    assert (ahead.filled, ahead.lost) == (1, end - start)
    rows = store.search_events(EventQuery(host=HOST, page=Page(limit=10_000)))
    assert len(rows) == RESTART_SPLITS[5][1] - (end - start)
    ingestor.close()
    store.close()
