"""The manager under test: a FastAPI TestClient over a findings store on SQLite (tmp_path) or
PostgreSQL (a fresh schema per test, dropped afterwards, with the per-host graph schemas).

PostgreSQL comes from ``PROVARMOR_TEST_POSTGRES_URL`` (``scripts/postgres-test-server.sh``
prints one), else the local test server's default URL. Without a reachable server the
PostgreSQL cases skip, except when ``CI`` is set: there they fail.
"""

import contextlib
import gzip
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from provarmor.manager.app import create_app
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.detectors import DetectionKit, load_detection
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.settings import ManagerSettings
from provarmor.manager.tls import write_certificates

with warnings.catch_warnings():
    # starlette asks for httpx2 instead of httpx; the test client works the same either way
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

URL_VARIABLE = "PROVARMOR_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql://provarmor:provarmor-test@127.0.0.1:5432/provarmor_test"
LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1"
BENIGN_LAB = Path(__file__).parents[2] / "data" / "lab" / "benign-seed2"
LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


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
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed")
    url = os.environ.get(URL_VARIABLE) or DEFAULT_URL
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        _unavailable(f"no PostgreSQL server (set {URL_VARIABLE}): {' '.join(str(exc).split())}")
    return url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A findings-store URL in a fresh schema; it and the host graph schemas made beside it
    are dropped after the test."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:16]}"
    separator = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{separator}schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as db:
        names = db.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{schema}%",)
        ).fetchall()
        for (name,) in names:
            db.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def kit() -> DetectionKit:
    """The bundled rules, compiled once for every test."""
    return load_detection(ManagerSettings())


@dataclass
class Manager:
    client: TestClient
    store: object
    settings: ManagerSettings
    admin: str
    kind: str
    agents: dict[str, str] = field(default_factory=dict)

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def token(self, role: Role) -> str:
        return create_token(self.store, role=role).token

    def enroll(self, host_id: str = LAB_HOST, hostname: str = "vm") -> tuple[str, str]:
        token = self.token(Role.ENROLL)
        answer = self.client.post(
            "/api/v1/enroll", json={"token": token, "host_id": host_id, "hostname": hostname}
        )
        assert answer.status_code == 201, answer.text
        data = answer.json()
        return data["agent_id"], data["credential"]

    def upload(self, agent_id: str, credential: str, *, sequence: int, body: bytes, **headers):
        all_headers = self.headers(credential) | {"X-Batch-Sequence": str(sequence)} | headers
        return self.client.post(
            f"/api/v1/agents/{agent_id}/batches", content=body, headers=all_headers
        )

    def get(self, path: str, token: str | None = None, **params):
        return self.client.get(
            f"/api/v1{path}", params=params, headers=self.headers(token or self.admin)
        )


def open_manager(kind: str, *, url: str, state_dir: Path, kit: DetectionKit, **settings):
    config = ManagerSettings(state_dir=state_dir, database_url=url, **settings)
    store = open_findings_store(config.effective_database_url())
    app = create_app(config, store, kit=kit)
    admin = create_token(store, role=Role.ADMIN).token
    return Manager(client=TestClient(app), store=store, settings=config, admin=admin, kind=kind)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def manager(request: pytest.FixtureRequest, tmp_path: Path, kit: DetectionKit) -> Iterator[Manager]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'manager.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    found = open_manager(
        request.param, url=url, state_dir=tmp_path, kit=kit, max_upload_bytes=1024 * 1024
    )
    with found.client:
        yield found
    found.client.app.state.context.ingestor.close()
    found.store.close()


@pytest.fixture
def make_manager(kit: DetectionKit) -> Iterator:
    """Open an extra SQLite manager with other settings, another kit (``with_kit``), its
    database in ``state_dir`` or at ``database`` (closed after the test)."""
    opened: list[Manager] = []

    def make(
        state_dir: Path,
        *,
        with_kit: DetectionKit | None = None,
        database: Path | None = None,
        **settings,
    ) -> Manager:
        found = open_manager(
            "sqlite",
            url=f"sqlite:///{database or state_dir / 'm.db'}",
            state_dir=state_dir,
            kit=with_kit or kit,
            **settings,
        )
        opened.append(found)
        return found

    yield make
    for found in opened:
        found.client.app.state.context.ingestor.close()
        found.store.close()


@pytest.fixture(scope="session")
def lab_lines() -> list[bytes]:
    """The real lab capture (nodlink scenario, eBPF sensor), one NDJSON line each."""
    return gzip.decompress((LAB / "events.ndjson.gz").read_bytes()).splitlines(keepends=True)


@pytest.fixture(scope="session")
def benign_lines() -> list[bytes]:
    """The real benign lab run (78 s, eBPF) of the same host, one NDJSON line each."""
    data = (BENIGN_LAB / "events.ndjson.gz").read_bytes()
    return gzip.decompress(data).splitlines(keepends=True)


def _lab_batches(lines: list[bytes], size: int = 500) -> list[tuple[int, bytes]]:
    """(sequence, body) per batch of the lab capture; the sequence is the spool's next."""
    return [
        (start + len(lines[start : start + size]), b"".join(lines[start : start + size]))
        for start in range(0, len(lines), size)
    ]


@pytest.fixture
def loaded(manager: Manager, lab_lines: list[bytes]) -> Manager:
    """The manager after one agent uploaded the whole lab capture (in batches of 500)."""
    agent_id, credential = manager.enroll()
    for sequence, body in _lab_batches(lab_lines):
        answer = manager.upload(agent_id, credential, sequence=sequence, body=body)
        assert answer.status_code == 200, answer.text
    return manager


def _free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving_https(directory: Path, kit: DetectionKit, **settings) -> Iterator[dict]:
    """A real manager on 127.0.0.1 over HTTPS (certificates from tls.py), in a thread:
    ``url``, ``ca`` (the CA file agents trust), its ``store`` and ``context``."""
    files = write_certificates(directory / "tls", hosts=["127.0.0.1"])
    config = ManagerSettings(
        state_dir=directory, tls_cert=files.server_cert, tls_key=files.server_key, **settings
    )
    store = open_findings_store(config.effective_database_url())
    app = create_app(config, store, kit=kit)
    port = _free_port()
    server = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=str(files.server_cert),
        ssl_keyfile=str(files.server_key),
    )
    running = uvicorn.Server(server)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started
    context = app.state.context
    yield {
        "url": f"https://127.0.0.1:{port}",
        "ca": files.ca_cert,
        "store": store,
        "context": context,
    }
    running.should_exit = True
    thread.join(timeout=10)
    context.ingestor.close()
    if context.bus_commands is not None:
        context.bus_commands.close()
    store.close()


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory, kit: DetectionKit) -> Iterator[dict]:
    """A real manager over HTTPS for the module (see :func:`serving_https`)."""
    with serving_https(tmp_path_factory.mktemp("manager"), kit) as served:
        yield served


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """A findings store alone (no API), on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'findings.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    opened = open_findings_store(url)
    yield opened
    opened.close()
