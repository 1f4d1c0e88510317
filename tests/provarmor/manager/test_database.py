"""Opening the findings store from a URL: the spellings accepted and the one refused."""

from pathlib import Path

import pytest

from provarmor.manager.database import is_postgres_url, open_findings_store, sqlite_path
from provarmor.model.errors import ConfigError


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
