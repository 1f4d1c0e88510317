"""The manager application as a whole (TestClient), against SQLite and PostgreSQL: every API
route needs a token, and health, metrics, the OpenAPI documents and unknown paths answer.
Each route's own behaviour is tested in tests/provarmor/manager/routes/."""


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
