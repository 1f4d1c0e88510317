"""Opening the findings store from a URL: the spellings accepted and the one refused, the
SQLite file private, PostgreSQL's own schema, and failures as StorageError."""

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from provarmor.manager.auth import Role
from provarmor.manager.database import is_postgres_url, open_findings_store, sqlite_path
from provarmor.manager.store import EventQuery, TokenRecord
from provarmor.model.errors import ConfigError, StorageError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@127.0.0.1/db", True),
        ("postgres://127.0.0.1/db?schema=x", True),
        ("sqlite:///state/m.db", False),
        ("mysql://127.0.0.1/db", False),
    ],
)
def test_is_postgres_url(url, expected):
    assert is_postgres_url(url) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///state/m.db", Path("state/m.db")),
        ("sqlite:////var/lib/provarmor/m.db", Path("/var/lib/provarmor/m.db")),
        ("/var/lib/provarmor/m.db", Path("/var/lib/provarmor/m.db")),
        ("m.db", Path("m.db")),
        ("", None),
        ("postgresql://127.0.0.1/db", None),
        ("mysql://127.0.0.1/db", None),
    ],
)
def test_sqlite_path(url, expected):
    assert sqlite_path(url) == expected


def test_sqlite_url_and_bare_path_open_the_same_file(tmp_path):
    path = tmp_path / "deep" / "findings.db"
    store = open_findings_store(f"sqlite:///{path}")
    assert store.location == str(path)
    assert store.has_admin() is False
    store.close()
    assert path.is_file()
    again = open_findings_store(str(path))
    assert again.location == str(path)
    again.close()


@pytest.mark.postgres
def test_postgres_url_opens_a_postgres_store(postgres_database):
    store = open_findings_store(postgres_database)
    assert store.location.startswith("postgresql://")
    assert store.has_admin() is False
    store.close()


def test_other_scheme_is_a_config_error_without_the_password():
    with pytest.raises(ConfigError, match="must be sqlite:///PATH or postgresql://") as caught:
        open_findings_store("mysql://admin:hunter2@127.0.0.1/db")
    assert caught.value.location == "127.0.0.1/db"
    assert "hunter2" not in str(caught.value)


def test_sqlite_store_data_is_visible_to_another_connection(tmp_path):
    path = tmp_path / "findings.db"
    store = open_findings_store(str(path))
    store.add_token(
        TokenRecord(id="t1", role=Role.ADMIN, salt="00", digest="ab", created_ns=1, label="x")
    )
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT id, role, label FROM tokens").fetchall() == [
            ("t1", "admin", "x")
        ]
    other.close()
    store.close()


def test_an_unopenable_path_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot open the findings store") as caught:
        open_findings_store(str(blocker / "findings.db"))
    assert caught.value.location == str(blocker / "findings.db")


def test_sqlite_store_file_its_journals_and_new_folders_are_private(tmp_path):
    old = os.umask(0o022)  # the usual umask: without care, 0644 files and 0755 folders
    try:
        path = tmp_path / "state" / "manager" / "manager.db"
        store = open_findings_store(str(path))
        store.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    files = list(path.parent.iterdir())
    assert path in files
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}


@pytest.mark.postgres
def test_postgres_tables_go_into_the_named_schema(postgres_database, postgres_url):
    import psycopg

    store = open_findings_store(postgres_database)
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
    store.close()


@pytest.mark.postgres
def test_postgres_nul_characters_are_no_error(postgres_database):
    """PostgreSQL text cannot hold NUL: values and search terms with one are stored and
    matched with U+FFFD in its place, instead of failing the statement."""
    store = open_findings_store(postgres_database)
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
