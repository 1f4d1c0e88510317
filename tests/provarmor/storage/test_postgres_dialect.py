"""The PostgreSQL dialect: the password hidden in every location and message, its own schema
(made when missing), ``?`` placeholders, bulk loads and upserts, whole transactions, and
StorageError for every failure."""

import time

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provarmor.model.errors import StorageError
from provarmor.storage.postgres_dialect import PostgresDialect, redact_url, split_schema

COLUMNS = (("k", "int8"), ("v", "text"))


# ---------------------------------------------------------------- URLs, no server needed
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="@/?#"), min_size=1))
def test_redact_url_hides_any_password(password):
    url = f"postgresql://alice:{password}@127.0.0.1:5432/db"
    assert redact_url(url) == "postgresql://alice:***@127.0.0.1:5432/db"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:secret@127.0.0.1/db", "postgresql://u:***@127.0.0.1/db"),
        ("postgres://u:p%40ss@h:5432/db?schema=s", "postgres://u:***@h:5432/db?schema=s"),
        ("postgresql://alice@127.0.0.1/db", "postgresql://alice@127.0.0.1/db"),
        ("postgresql://127.0.0.1/db", "postgresql://127.0.0.1/db"),
        ("host=127.0.0.1 password=x y=1", "host=127.0.0.1 password=*** y=1"),
        ("postgresql://a:password=b@h/db", "postgresql://a:***@h/db"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_split_schema_takes_our_option_and_keeps_libpq_ones():
    url = "postgresql://a@127.0.0.1/db?sslmode=disable&schema=tenant_1"
    assert split_schema(url) == ("postgresql://a@127.0.0.1/db?sslmode=disable", "tenant_1")
    assert split_schema("postgresql://a@127.0.0.1/db") == ("postgresql://a@127.0.0.1/db", None)


def test_unreachable_server_is_a_storage_error_without_the_password():
    url = "postgresql://who:topsecret@127.0.0.1:1/db"
    with pytest.raises(StorageError, match="cannot open the test store") as caught:
        PostgresDialect(url, name="test store")
    assert caught.value.location == "postgresql://who:***@127.0.0.1:1/db"
    assert "topsecret" not in str(caught.value)


def test_bad_schema_name_is_refused_before_connecting():
    with pytest.raises(StorageError, match="bad schema name"):
        PostgresDialect("postgresql://u@127.0.0.1:1/db?schema=a;drop", name="test store")


# ---------------------------------------------------------------- with a server
def _insert_then_fail(dialect) -> None:
    with dialect.transaction():
        dialect.execute("INSERT INTO t (k, v) VALUES (?, ?)", (3, "c"))
        raise RuntimeError("abandon")


def _upsert_then_fail(dialect) -> None:
    with dialect.transaction():
        dialect.upsert("t", COLUMNS, [(1, "a")], conflict="k", update="v = excluded.v")
        dialect.execute("SELECT nothing FROM nowhere")


@pytest.fixture
def dialect(postgres_url, postgres_schema):
    opened = PostgresDialect(postgres_url, name="test store", schema=postgres_schema)
    with opened.setup():
        opened.execute_script(opened.ddl("CREATE TABLE t (k {int} PRIMARY KEY, v TEXT)"))
    yield opened
    opened.close()


@pytest.mark.postgres
def test_setup_makes_the_schema_and_tables_go_there(dialect, postgres_url, postgres_schema):
    with psycopg.connect(postgres_url) as db:
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (postgres_schema,),
        ).fetchall()
    assert tables == [("t",)]


@pytest.mark.postgres
def test_placeholders_and_transactions(dialect):
    with dialect.transaction():
        dialect.executemany("INSERT INTO t (k, v) VALUES (?, ?)", [(1, "a"), (2, "b")])
    with pytest.raises(RuntimeError, match="abandon"):
        _insert_then_fail(dialect)
    assert dialect.execute("SELECT k FROM t ORDER BY k").fetchall() == [(1,), (2,)]
    with pytest.raises(StorageError, match="test store:") as caught:
        dialect.execute("SELECT nothing FROM nowhere")
    assert caught.value.location == dialect.location
    with pytest.raises(StorageError, match="test store:"):
        dialect.executemany("INSERT INTO nowhere VALUES (?)", [(1,)])


@pytest.mark.postgres
def test_load_upsert_and_update_in_bulk(dialect):
    with dialect.transaction():
        dialect.load("t", COLUMNS, [(1, "a"), (2, "b")])
        returned = dialect.upsert(
            "t", COLUMNS, [(2, "B"), (3, "c")], conflict="k", update="v = excluded.v", returning="k"
        )
        dialect.update("t", COLUMNS, [(1, "A"), (9, "none")])
    assert sorted(returned) == [(2,), (3,)]
    assert dialect.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [
        (1, "A"),
        (2, "B"),
        (3, "c"),
    ]


@pytest.mark.postgres
def test_a_failed_transaction_leaves_bulk_writes_working(dialect):
    """The staging tables a failed transaction made are rolled back with it and made again."""
    with pytest.raises(StorageError):
        _upsert_then_fail(dialect)
    with dialect.transaction():
        dialect.upsert("t", COLUMNS, [(1, "b")], conflict="k", update="v = excluded.v")
    assert dialect.execute("SELECT k, v FROM t").fetchall() == [(1, "b")]


@pytest.mark.postgres
def test_nul_characters_become_replacement_characters(dialect):
    """PostgreSQL text cannot hold NUL: values and search terms with one are stored and
    matched with U+FFFD in its place, instead of failing the statement."""
    dialect.execute("INSERT INTO t (k, v) VALUES (?, ?)", (1, "a\x00b"))
    assert dialect.execute("SELECT k FROM t WHERE v = ?", ("a\x00b",)).fetchall() == [(1,)]
    assert dialect.execute("SELECT v FROM t").fetchall() == [("a\ufffdb",)]


@pytest.mark.postgres
def test_used_bytes_counts_the_schema_tables_and_reclaim_leaves_them_to_autovacuum(dialect):
    empty = dialect.used_bytes()
    with dialect.transaction():
        dialect.executemany(
            "INSERT INTO t (k, v) VALUES (?, ?)", [(k, "x" * 1000) for k in range(2000)]
        )
    assert dialect.used_bytes() > empty + 1_000_000
    assert dialect.reclaim(pages=100) == 0


@pytest.mark.postgres
def test_vacuum_runs_beside_an_open_transaction_of_the_store(dialect, postgres_schema):
    with dialect.transaction():
        dialect.executemany("INSERT INTO t (k, v) VALUES (?, ?)", [(k, "x") for k in range(100)])
    with dialect.transaction():
        dialect.execute("DELETE FROM t WHERE k < 50")
    with dialect.transaction():  # the store's own connection is busy in a transaction
        dialect.execute("INSERT INTO t (k, v) VALUES (?, ?)", (1000, "y"))
        dialect.vacuum(["t"])
    deadline = time.monotonic() + 10
    count = 0
    while time.monotonic() < deadline and not count:
        row = dialect.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = ? AND relname = 't'",
            (postgres_schema,),
        ).fetchone()
        count = int(row[0]) if row else 0
        time.sleep(0.1)
    assert count >= 1
