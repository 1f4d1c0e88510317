"""PostgreSQL-only behaviour: format refusal, connection errors with the password hidden,
schema isolation, paging, and the same graph as SQLite from the same real capture."""

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from provarmor.graph.builder import GraphBuilder, GraphDelta
from provarmor.graph.records import Node, NodeKind
from provarmor.model.actions import Action
from provarmor.model.errors import StorageError
from provarmor.pipeline.ingest import file_digest, ingest_file, ingest_key
from provarmor.storage import sql_graph
from provarmor.storage.postgres_graph import PostgresGraphStore
from provarmor.storage.sqlite_graph import SqliteGraphStore
from provarmor.testing.factories import make_event


def fill(store, events):
    builder = GraphBuilder(next_edge_id=store.next_edge_id())
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True))


def with_password(url, password):
    return re.sub(r"^(postgresql://[^:@/]+)(:[^@/]*)?@", rf"\1:{password}@", url)


@pytest.fixture
def open_store(postgres_url, postgres_schema):
    opened = []

    def open_(**options):
        store = PostgresGraphStore(postgres_url, schema=postgres_schema, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


# ---------------------------------------------------------------- no server needed
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:hush-hush@127.0.0.1:1/db", "Connection refused"),
        ("postgresql://u:hush-hush@[::1/db", "IPv6"),
        ("postgresql://u:hush%zzhush@127.0.0.1/db", "percent-encoded"),
        ("postgresql://u:hush-hush@127.0.0.1/db?nonsense=1", "nonsense"),
    ],
)
def test_connection_problems_are_storage_errors_without_the_password(url, expected):
    with pytest.raises(StorageError) as raised:
        PostgresGraphStore(url)
    text = str(raised.value)
    assert expected in text and "hush" not in text
    assert raised.value.location is not None and "u:***@" in raised.value.location


def test_a_bad_schema_name_is_refused_before_connecting():
    with pytest.raises(StorageError, match="bad schema name"):
        PostgresGraphStore("postgresql://u@127.0.0.1:1/db", schema="x; DROP TABLE nodes")


# ---------------------------------------------------------------- with a server
@pytest.mark.postgres
def test_wrong_password_is_a_storage_error_without_the_password(postgres_url):
    url = with_password(postgres_url, "not-the-password")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        pass
    else:
        pytest.skip("this test server does not check passwords")
    with pytest.raises(StorageError, match="password authentication failed") as raised:
        PostgresGraphStore(url)
    assert "not-the-password" not in str(raised.value)


@pytest.mark.postgres
def test_newer_format_is_refused(open_store, postgres_url, postgres_schema):
    open_store().close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"UPDATE {postgres_schema}.meta SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(StorageError, match="format 99 is newer"):
        open_store()


@pytest.mark.postgres
def test_schemas_keep_stores_apart(open_store, postgres_url, postgres_schema):
    store = open_store()
    fill(store, [make_event(Action.EXEC, pid=2, ts=1)])
    other = PostgresGraphStore(f"{postgres_url}?schema={postgres_schema}_b")
    try:
        assert other.schema == f"{postgres_schema}_b"
        assert other.edge_count() == 0 and other.node("test-host-p2") is None
        fill(other, [make_event(Action.EXEC, pid=3, ts=1)])
        assert store.node("test-host-p3") is None and store.node("test-host-p2") is not None
    finally:
        other.close()
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(f"DROP SCHEMA {postgres_schema}_b CASCADE")


@pytest.mark.postgres
def test_iteration_pages_through_ties_in_time(open_store, monkeypatch):
    monkeypatch.setattr(sql_graph, "PAGE_ROWS", 2)
    store = open_store()
    nodes = [
        Node(id=f"n{i}", kind=NodeKind.FILE, host="h", first_ts=i // 3, last_ts=9) for i in range(7)
    ]
    store.apply(GraphDelta(nodes=list(reversed(nodes))))
    fill(store, [make_event(Action.WRITE, pid=2, path=f"/f{i}", ts=i) for i in range(5)])
    got = [n.id for n in store.iter_nodes() if n.id.startswith("n")]
    assert sorted(got) == sorted(n.id for n in nodes)
    assert [int(name[1:]) // 3 for name in got] == [0, 0, 0, 1, 1, 1, 2]
    assert [e.id for e in store.iter_edges()] == [1, 2, 3, 4, 5]


@pytest.mark.postgres
def test_a_full_key_cache_is_cleared_and_edges_still_land(open_store, monkeypatch):
    monkeypatch.setattr(sql_graph, "KEY_CACHE_SIZE", 3)
    store = open_store()
    fill(store, [make_event(Action.WRITE, pid=2, path="/a", ts=1)])
    fill(store, [make_event(Action.WRITE, pid=2, path="/b", ts=2)])
    assert store.key_cache_resets >= 1
    assert sorted(e.dst for e in store.out_edges("test-host-p2")) == [
        "file:test-host:/a",
        "file:test-host:/b",
    ]


@pytest.mark.postgres
def test_a_lost_connection_is_a_storage_error(open_store):
    store = open_store()
    store.close()
    with pytest.raises(StorageError, match="graph store: the connection is closed"):
        store.node("x")
    with pytest.raises(StorageError, match="graph store: the connection is closed"):
        store.apply(GraphDelta())


@pytest.mark.postgres
def test_two_stores_may_create_one_schema_at_once(open_store):
    errors = []

    def open_one():
        try:
            open_store()
        except StorageError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.postgres
def test_same_real_capture_gives_the_same_graph_as_sqlite(open_store, data_dir, tmp_path):
    capture = data_dir / "auditd" / "attack_chain.log"
    sqlite = SqliteGraphStore(tmp_path / "g.db")
    postgres = open_store()
    for store in (sqlite, postgres):
        result = ingest_file(capture, format="auditd", store=store)
        assert result.report.events == 148
    try:
        assert list(postgres.iter_edges()) == list(sqlite.iter_edges())
        assert sorted(postgres.iter_nodes(), key=lambda n: n.id) == sorted(
            sqlite.iter_nodes(), key=lambda n: n.id
        )
        assert postgres.stats() == sqlite.stats()
        last = sqlite.last_edge(action="connect")
        assert last is not None and postgres.last_edge(action="connect") == last
        assert postgres.event_edge(last.last_event) == sqlite.event_edge(last.last_event)
        key = ingest_key(file_digest(capture), "auditd")
        assert postgres.ingested(key) == (str(capture), 148)
    finally:
        sqlite.close()


def test_lookups_with_nul_characters_find_nothing_instead_of_failing(open_store):
    store = open_store()
    assert store.node("p\x00") is None
    assert store.in_edges("p\x00") == []
    assert store.find_nodes("a\x00b") == []


# ---------------------------------------------------------------- without a server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "test_id",
    [
        "tests/provarmor/storage/test_sql_graph.py::test_round_trip_and_queries[postgres]",
        "tests/provarmor/manager/test_database.py",
    ],
)
def test_a_postgres_test_that_skips_says_how_to_run_it(test_id):
    """Run in a pytest of its own, pointed at a port where no server listens."""
    root = Path(__file__).resolve().parents[3]
    environment = {key: value for key, value in os.environ.items() if key != "CI"}
    environment["PROVARMOR_TEST_POSTGRES_URL"] = f"postgresql://nobody@127.0.0.1:{_free_port()}/x"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", test_id, "-rs", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=300,
    )
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped, result.stdout
    assert all("scripts/postgres-test-server.sh" in line for line in skipped), skipped
    assert all(".ci/run" in line for line in skipped), skipped
