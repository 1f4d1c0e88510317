"""Graph stores for the storage tests: SQLite in tmp_path, PostgreSQL in a fresh schema.

PostgreSQL comes from ``PROVARMOR_TEST_POSTGRES_URL`` (``scripts/postgres-test-server.sh``
prints one), else from the defaults below. Without a reachable server the PostgreSQL tests
skip, except when ``CI`` is set: there they fail, so CI never loses them silently.
"""

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from provarmor.storage.sqlite_graph import SqliteGraphStore

URL_VARIABLE = "PROVARMOR_TEST_POSTGRES_URL"
DEFAULT_URLS = (
    "postgresql://provarmor:provarmor-test@127.0.0.1:5432/provarmor_test",
    "postgresql://provarmor@127.0.0.1:5432/provarmor_test",
)


HOW_TO_RUN = (
    "to run them: .ci/run, or start the local test server with "
    f'export {URL_VARIABLE}="$(scripts/postgres-test-server.sh)" and run pytest again'
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI needs PostgreSQL: {reason}", pytrace=False)
    pytest.skip(f"{reason}; {HOW_TO_RUN}")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A URL of a reachable PostgreSQL database the tests may create schemas in."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[dev]')")
    candidates = [os.environ[URL_VARIABLE]] if os.environ.get(URL_VARIABLE) else DEFAULT_URLS
    problems = []
    for url in candidates:
        try:
            psycopg.connect(url, connect_timeout=3).close()
        except psycopg.Error as exc:
            problems.append(" ".join(str(exc).split()))
            continue
        return url
    _unavailable(f"no PostgreSQL server for the tests (set {URL_VARIABLE}): {problems[-1]}")
    raise AssertionError("unreachable")


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema name, dropped with everything in it after the test."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:16]}"
    yield schema
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@dataclass
class StoreFactory:
    """Opens (and reopens) one store location; closes every store it opened at teardown."""

    kind: str
    opener: Callable[[], object]
    opened: list = field(default_factory=list)

    def __call__(self):
        store = self.opener()
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def graph_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[StoreFactory]:
    """Call it to open the store under test; call it again to reopen the same store."""
    if request.param == "sqlite":
        path = tmp_path / "g.db"
        factory = StoreFactory("sqlite", lambda: SqliteGraphStore(path))
    else:
        from provarmor.storage.postgres_graph import PostgresGraphStore

        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
        factory = StoreFactory("postgres", lambda: PostgresGraphStore(url, schema=schema))
    yield factory
    for store in factory.opened:
        store.close()
