import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provarmor.model.errors import StorageError
from provarmor.storage.sql_graph import FORMAT_VERSION
from provarmor.storage.sqlite_graph import SqliteGraphStore
from provarmor.storage.urls import open_graph_store


def opened_path(target):
    store = open_graph_store(target)
    try:
        assert isinstance(store, SqliteGraphStore)
        return store.path
    finally:
        store.close()


def test_plain_paths_open_sqlite(tmp_path):
    assert opened_path(tmp_path / "a.db") == str(tmp_path / "a.db")
    assert opened_path(str(tmp_path / "b.db")) == str(tmp_path / "b.db")
    assert (tmp_path / "a.db").is_file() and (tmp_path / "b.db").is_file()


def test_sqlite_urls_follow_sqlalchemy_slashes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert opened_path("sqlite:///rel.db") == "rel.db"
    assert (tmp_path / "rel.db").is_file()
    assert opened_path(f"SQLite:///{tmp_path}/abs.db") == f"{tmp_path}/abs.db"
    assert (tmp_path / "abs.db").is_file()


@pytest.mark.parametrize("url", ["sqlite://host/g.db", "sqlite:///", "sqlite:///g.db?mode=ro"])
def test_malformed_sqlite_urls_are_refused(url):
    with pytest.raises(StorageError, match="sqlite:///relative/path"):
        open_graph_store(url)


def test_postgres_urls_reach_the_postgres_store():
    with pytest.raises(StorageError, match="cannot open the graph store") as raised:
        open_graph_store("postgres://u:sesame@127.0.0.1:1/db")
    assert "sesame" not in str(raised.value) and "127.0.0.1:1" in str(raised.value)


@pytest.mark.postgres
def test_a_postgres_url_opens_a_working_store(postgres_url, postgres_schema):
    store = open_graph_store(f"{postgres_url}?schema={postgres_schema}")
    try:
        assert type(store).__name__ == "PostgresGraphStore"
        assert store.meta("format_version") == str(FORMAT_VERSION)
    finally:
        store.close()


def test_without_psycopg_the_error_says_what_to_install(monkeypatch):
    for module in ("provarmor.storage.postgres_graph", "provarmor.storage.postgres_dialect"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StorageError, match=r"pip install 'provarmor\[postgres\]'"):
        open_graph_store("postgresql://u@127.0.0.1/db")


@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,10}", fullmatch=True).filter(
        lambda s: s.lower() not in {"sqlite", "postgres", "postgresql"}
    ),
    st.text(max_size=20),
)
def test_any_other_scheme_is_refused_by_name(scheme, rest):
    with pytest.raises(StorageError, match="unknown graph store scheme") as raised:
        open_graph_store(f"{scheme}://{rest}")
    assert repr(scheme.lower()) in str(raised.value)


def test_a_path_object_is_never_read_as_a_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x:").mkdir()
    assert opened_path(Path("x://g.db")) == "x:/g.db"
