"""The PostgreSQL stores of a process share a few connections: many host graphs open at once
fit a role allowed five connections, stores on one connection keep to their own schemas,
and a busy pool, a bad pool size and the last close are handled."""

import re
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from provarmor.graph.builder import GraphDelta
from provarmor.graph.records import Node, NodeKind
from provarmor.model.errors import StorageError
from provarmor.storage import postgres_pool
from provarmor.storage.postgres_graph import PostgresGraphStore

ROLE_CONNECTIONS = 5
HOSTS = 20


def _node(host: str, number: int) -> Node:
    return Node(
        id=f"{host}:p{number}",
        kind=NodeKind.PROCESS,
        host=host,
        first_ts=number,
        last_ts=number,
        label=f"/bin/{host}",
        pid=number,
    )


def _with_options(url: str, **options: str) -> str:
    query = "&".join(f"{name}={value}" for name, value in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _connections(url: str, application: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND pid <> pg_backend_pid()",
            (application,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _all_closed(url: str, application: str) -> bool:
    """Whether the server has no session of ``application`` left (a backend ends a moment
    after its client closed)."""
    deadline = time.monotonic() + 5
    while _connections(url, application) > 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def limited_url(postgres_url: str) -> Iterator[str]:
    """The test database through a new role allowed :data:`ROLE_CONNECTIONS` connections
    (made by the test role, which ``scripts/postgres-test-server.sh`` lets create roles)."""
    role = f"test_limited_{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    with psycopg.connect(postgres_url, autocommit=True) as db:
        database = db.info.dbname
        db.execute(
            f"CREATE ROLE {role} LOGIN PASSWORD '{password}' CONNECTION LIMIT {ROLE_CONNECTIONS}"
        )
        db.execute(f'GRANT CREATE ON DATABASE "{database}" TO {role}')
        db.execute(f"GRANT {role} TO CURRENT_USER")  # to drop what it made, even at its limit
    url = re.sub(r"^(postgres(?:ql)?://)[^@/]*@", rf"\g<1>{role}:{password}@", postgres_url)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(f"DROP OWNED BY {role} CASCADE")  # its schemas and its grant
            db.execute(f"DROP ROLE {role}")


@pytest.mark.postgres
def test_more_host_graphs_than_the_role_may_connect_share_its_connections(limited_url):
    application = f"test_{uuid.uuid4().hex[:12]}"
    url = _with_options(limited_url, application_name=application)
    hosts = [f"host{i}" for i in range(HOSTS)]
    stores: dict[str, PostgresGraphStore] = {}
    try:
        for host in hosts:
            stores[host] = PostgresGraphStore(url, schema=f"{application}_{host}")
        for host, store in stores.items():
            store.apply(GraphDelta(nodes=[_node(host, 1)]), meta={"position": host})
        assert _connections(url, application) <= postgres_pool.DEFAULT_POOL_SIZE
        for host, store in stores.items():
            assert store.node(f"{host}:p1") == _node(host, 1)
            assert store.meta("position") == host
            assert store.stats().nodes_by_kind == {"process": 1}
    finally:
        for store in stores.values():
            store.close()
    assert _all_closed(url, application)


@pytest.mark.postgres
def test_stores_taking_turns_on_one_connection_keep_to_their_schemas(postgres_url):
    """Statements run often enough for psycopg to prepare them on the server still read the
    schema of the store that runs them."""
    application = f"test_{uuid.uuid4().hex[:12]}"
    url = _with_options(postgres_url, pool_size="1", application_name=application)
    stores = {host: PostgresGraphStore(url, schema=f"{application}_{host}") for host in "ab"}
    try:
        for number in range(1, 9):
            for host, store in stores.items():
                store.apply(GraphDelta(nodes=[_node(host, number)]))
                assert store.node(f"{host}:p{number}") == _node(host, number)
                assert store.stats().nodes_by_kind == {"process": number}
        assert _connections(postgres_url, application) == 1
        assert [n.id for n in stores["a"].iter_nodes()] == [f"a:p{i}" for i in range(1, 9)]
    finally:
        for store in stores.values():
            store.close()
        with psycopg.connect(postgres_url, autocommit=True) as db:
            for host in stores:
                db.execute(f"DROP SCHEMA IF EXISTS {application}_{host} CASCADE")


@pytest.mark.postgres
def test_a_busy_pool_is_a_storage_error_after_the_wait(postgres_url, postgres_schema, monkeypatch):
    monkeypatch.setattr(postgres_pool, "CHECKOUT_TIMEOUT_S", 0.2)
    url = _with_options(postgres_url, pool_size="1")
    writer = PostgresGraphStore(url, schema=postgres_schema)
    reader = PostgresGraphStore(url, schema=postgres_schema)
    try:
        with writer._db.transaction():  # holds the only connection
            with pytest.raises(StorageError, match="no free connection in 0 s") as caught:
                reader.node("x")
            assert caught.value.location == reader.path
        assert reader.node("x") is None  # free again
        assert writer._db.pool.waits == 1
    finally:
        writer.close()
        reader.close()


def test_a_bad_pool_size_is_refused_naming_it():
    with pytest.raises(StorageError, match="bad pool_size '0'"):
        PostgresGraphStore("postgresql://u:pw@127.0.0.1:1/db?pool_size=0")
