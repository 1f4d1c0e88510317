"""The PostgreSQL dialect: its own schema (made when missing), the password hidden in every
location, ``?`` placeholders, whole transactions, and StorageError for every failure."""

import psycopg
import pytest

from provarmor.manager.postgres_store import PostgresDialect, hide_password, open_postgres_store
from provarmor.model.errors import StorageError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:secret@127.0.0.1/db", "postgresql://u:***@127.0.0.1/db"),
        ("postgres://u:p%40ss@h:5432/db?schema=s", "postgres://u:***@h:5432/db?schema=s"),
        ("postgresql://u@127.0.0.1/db", "postgresql://u@127.0.0.1/db"),
        ("postgresql://127.0.0.1/db", "postgresql://127.0.0.1/db"),
    ],
)
def test_hide_password(url, expected):
    assert hide_password(url) == expected


@pytest.mark.postgres
def test_tables_go_into_the_named_schema(postgres_database, postgres_url):
    store = open_postgres_store(postgres_database)
    schema = postgres_database.rsplit("schema=", 1)[1]
    with psycopg.connect(postgres_url) as db:
        tables = {
            row[0]
            for row in db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        }
    assert {"meta", "tokens", "agents", "batches", "events", "alerts", "incidents"} <= tables
    password = postgres_url.split("//", 1)[1].split("@")[0].partition(":")[2]
    assert not password or password not in store.location
    assert store.location.startswith(hide_password(postgres_url))
    store.close()


@pytest.mark.postgres
def test_placeholders_and_transactions(postgres_database):
    dialect = PostgresDialect(postgres_database)
    dialect.execute_script("CREATE TABLE t (x INTEGER); CREATE TABLE u (y TEXT);")
    with dialect.transaction():
        dialect.executemany("INSERT INTO t (x) VALUES (?)", [(1,), (2,)])
    with pytest.raises(RuntimeError, match="abandon"):
        _insert_then_fail(dialect)
    assert dialect.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    with pytest.raises(StorageError, match="findings store:") as caught:
        dialect.execute("SELECT nothing FROM nowhere")
    assert caught.value.location == dialect.location
    with pytest.raises(StorageError, match="findings store:"):
        dialect.executemany("INSERT INTO nowhere VALUES (?)", [(1,)])
    dialect.close()


@pytest.mark.postgres
def test_bad_schema_name_is_refused(postgres_url):
    with pytest.raises(StorageError, match="bad schema name"):
        PostgresDialect(f"{postgres_url}?schema=a;drop")


def _insert_then_fail(dialect) -> None:
    with dialect.transaction():
        dialect.execute("INSERT INTO t (x) VALUES (?)", (3,))
        raise RuntimeError("abandon")


def test_unreachable_server_is_a_storage_error_without_the_password():
    url = "postgresql://who:topsecret@127.0.0.1:1/db"
    with pytest.raises(StorageError, match="cannot open the findings store") as caught:
        PostgresDialect(url)
    assert caught.value.location == "postgresql://who:***@127.0.0.1:1/db"
    assert "topsecret" not in caught.value.location


@pytest.mark.postgres
def test_nul_characters_are_no_error(postgres_database):
    """PostgreSQL text cannot hold NUL: values and search terms with one are stored and
    matched with U+FFFD in its place, instead of failing the statement."""
    from provarmor.manager.auth import Role
    from provarmor.manager.store import EventQuery, TokenRecord

    store = open_postgres_store(postgres_database)
    try:
        record = TokenRecord(
            id="t1", role=Role.ANALYST, salt="00", digest="ab", created_ns=1, label="a\x00b"
        )
        store.add_token(record)
        assert store.token("t1").label == "a\ufffdb"
        assert store.search_events(EventQuery(text="a\x00b", host="\x00")) == []
        assert store.incident("inc\x00") is None
        assert store.revoke_token("t\x00", now_ns=1) is False
    finally:
        store.close()
