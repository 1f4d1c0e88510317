"""The manager application as a whole (TestClient), against SQLite and PostgreSQL: every API
route needs a token, and health, metrics, the OpenAPI documents and unknown paths answer.
Each route's own behaviour is tested in tests/provarmor/manager/routes/."""

import time

from provarmor.manager.app import create_app
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.settings import ManagerSettings, RetentionSettings

from .conftest import Manager, TestClient, _lab_batches


def test_no_unauthenticated_access(manager):
    for path in ("/hosts", "/events", "/alerts", "/incidents", "/rules", "/stats/timeline"):
        assert manager.client.get(f"/api/v1{path}").status_code == 401, path
    assert manager.client.post("/api/v1/tokens", json={"role": "admin"}).status_code == 401
    assert manager.client.post("/api/v1/enrollment-tokens", json={}).status_code == 401
    answer = manager.client.post("/api/v1/agents/x/batches", content=b"{}")
    assert answer.status_code == 401
    assert answer.json()["field"] == "Authorization"


def test_health_docs_and_unknown_paths(manager):
    assert manager.client.get("/healthz").json()["status"] == "ok"
    spec = manager.client.get("/openapi.json").json()
    assert "/api/v1/agents/{agent_id}/batches" in spec["paths"]
    assert manager.client.get("/docs").status_code == 200
    assert "provarmor_manager_uploads_total" in manager.client.get("/metrics").text
    unknown = manager.client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]


def test_an_unavailable_store_is_a_503_naming_no_secret(manager):
    manager.store.close()  # the connection is gone: every later statement fails
    answer = manager.get("/hosts")
    assert answer.status_code == 503
    assert answer.json()["error"].startswith("store unavailable: ")
    assert "Traceback" not in answer.text


def test_retention_runs_while_the_app_is_served_and_stops_with_it(tmp_path, kit, lab_lines):
    config = ManagerSettings(state_dir=tmp_path)
    store = open_findings_store(config.effective_database_url())
    # the lab capture is older than a day of the clock: all of it goes in the first pass
    retention = RetentionSettings(interval_seconds=1, events_days=1)
    app = create_app(config, store, kit=kit, retention=retention)
    manager = Manager(
        client=TestClient(app),
        store=store,
        settings=config,
        admin=create_token(store, role=Role.ADMIN).token,
        kind="sqlite",
    )
    with manager.client:
        agent_id, credential = manager.enroll()
        for sequence, body in _lab_batches(lab_lines):
            assert (
                manager.upload(agent_id, credential, sequence=sequence, body=body).status_code
                == 200
            )
        ran = 'provarmor_retention_runs_total{result="ok"}'

        def done() -> bool:
            cleared = manager.get("/hosts").json()[0]["events"] == 0
            return cleared and ran in manager.client.get("/metrics").text

        deadline = time.monotonic() + 30
        while not done() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done()
    assert app.state.retention._thread is None  # stopped at shutdown
    app.state.context.ingestor.close()
    store.close()
