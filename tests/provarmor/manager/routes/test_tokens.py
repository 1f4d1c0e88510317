"""The admin token routes: user API tokens and one-time agent enrolment tokens."""

import time

from provarmor.manager.auth import Role
from provarmor.manager.routes.tokens import create_token


def test_create_token_stores_a_usable_token(manager):
    before = time.time_ns()
    made = create_token(manager.store, role=Role.ANALYST, label="ci")
    assert made.role == "analyst"
    assert made.expires_ns == 0
    assert made.token.startswith(f"pa.{made.id}.")
    assert manager.get("/alerts", token=made.token).status_code == 200
    timed = create_token(manager.store, role=Role.ENROLL, valid_ns=60_000_000_000)
    assert before + 60_000_000_000 <= timed.expires_ns <= time.time_ns() + 60_000_000_000


def test_only_an_admin_makes_tokens(manager):
    analyst = manager.token(Role.ANALYST)
    created = manager.client.post(
        "/api/v1/tokens", json={"role": "analyst"}, headers=manager.headers(analyst)
    )
    assert created.status_code == 403
    assert created.json() == {"error": "this needs the admin role", "field": "Authorization"}
    enrolment = manager.client.post(
        "/api/v1/enrollment-tokens", json={}, headers=manager.headers(analyst)
    )
    assert enrolment.status_code == 403
    assert manager.get("/incidents", token=analyst).status_code == 200
    assert manager.client.post("/api/v1/tokens", json={"role": "admin"}).status_code == 401


def test_admin_makes_user_tokens_of_the_two_user_roles(manager):
    made = manager.client.post(
        "/api/v1/tokens", json={"role": "analyst"}, headers=manager.headers(manager.admin)
    )
    assert made.status_code == 201
    assert made.json()["role"] == "analyst"
    assert manager.get("/alerts", token=made.json()["token"]).status_code == 200
    admin = manager.client.post(
        "/api/v1/tokens", json={"role": "admin"}, headers=manager.headers(manager.admin)
    ).json()
    assert (
        manager.client.post(
            "/api/v1/tokens", json={"role": "analyst"}, headers=manager.headers(admin["token"])
        ).status_code
        == 201
    )
    for role in ("agent", "enroll"):
        bad_role = manager.client.post(
            "/api/v1/tokens", json={"role": role}, headers=manager.headers(manager.admin)
        )
        assert bad_role.status_code == 400
        assert bad_role.json()["field"] == "role"


def test_enrolment_token_expires_as_asked_or_by_the_setting(manager):
    headers = manager.headers(manager.admin)
    now = time.time_ns()
    asked = manager.client.post(
        "/api/v1/enrollment-tokens", json={"valid_seconds": 60}, headers=headers
    )
    assert asked.status_code == 201
    assert asked.json()["role"] == "enroll"
    assert now + 60 * 10**9 <= asked.json()["expires_ns"] <= time.time_ns() + 60 * 10**9
    default = manager.client.post("/api/v1/enrollment-tokens", json={}, headers=headers).json()
    seconds = manager.settings.enrollment_token_seconds
    assert default["expires_ns"] >= now + seconds * 10**9
    assert default["expires_ns"] <= time.time_ns() + seconds * 10**9
    body = {"token": asked.json()["token"], "host_id": "h-new"}
    assert manager.client.post("/api/v1/enroll", json=body).status_code == 201
    zero = manager.client.post(
        "/api/v1/enrollment-tokens", json={"valid_seconds": 0}, headers=headers
    )
    assert zero.status_code == 400


def _listed(manager, token_id):
    listed = manager.get("/tokens")
    assert listed.status_code == 200, listed.text
    return next(row for row in listed.json() if row["id"] == token_id)


def test_admin_revokes_a_token_and_it_stops_working_at_once(manager):
    made = manager.client.post(
        "/api/v1/tokens", json={"role": "analyst"}, headers=manager.headers(manager.admin)
    ).json()
    assert manager.get("/alerts", token=made["token"]).status_code == 200
    analyst = manager.token(Role.ANALYST)
    refused = manager.client.delete(
        f"/api/v1/tokens/{made['id']}", headers=manager.headers(analyst)
    )
    assert refused.status_code == 403
    before = time.time_ns()
    revoked = manager.client.delete(
        f"/api/v1/tokens/{made['id']}", headers=manager.headers(manager.admin)
    )
    assert revoked.status_code == 200, revoked.text
    assert before <= revoked.json()["revoked_ns"] <= time.time_ns()
    assert manager.get("/alerts", token=made["token"]).status_code == 401
    assert _listed(manager, made["id"])["revoked_ns"] == revoked.json()["revoked_ns"]
    unknown = manager.client.delete(
        "/api/v1/tokens/0123456789abcdef", headers=manager.headers(manager.admin)
    )
    assert (unknown.status_code, unknown.json()["field"]) == (404, "token_id")


def test_revoking_an_agent_credential_cuts_the_agent_off(manager, lab_lines):
    agent_id, credential = manager.enroll()
    assert manager.upload(agent_id, credential, sequence=1, body=lab_lines[0]).status_code == 200
    answer = manager.client.delete(
        f"/api/v1/tokens/{agent_id}", headers=manager.headers(manager.admin)
    )
    assert answer.status_code == 200
    assert manager.upload(agent_id, credential, sequence=2, body=lab_lines[1]).status_code == 401


def test_token_list_shows_last_use_and_never_a_secret(manager):
    made = manager.client.post(
        "/api/v1/tokens",
        json={"role": "analyst", "label": "ci"},
        headers=manager.headers(manager.admin),
    ).json()
    row = _listed(manager, made["id"])
    assert row["last_used_ns"] == 0
    assert row["label"] == "ci"
    assert row["role"] == "analyst"
    assert set(row) == {
        "id",
        "role",
        "label",
        "created_ns",
        "expires_ns",
        "last_used_ns",
        "revoked_ns",
    }
    before = time.time_ns()
    assert manager.get("/alerts", token=made["token"]).status_code == 200
    used = _listed(manager, made["id"])["last_used_ns"]
    assert before <= used <= time.time_ns()
    listing = manager.get("/tokens").text
    assert made["token"].split(".")[2] not in listing


def test_user_tokens_expire_by_default_or_as_asked(manager):
    headers = manager.headers(manager.admin)
    now = time.time_ns()
    default = manager.client.post("/api/v1/tokens", json={"role": "analyst"}, headers=headers)
    seconds = manager.settings.user_token_seconds
    assert seconds > 0
    assert now + seconds * 10**9 <= default.json()["expires_ns"] <= time.time_ns() + seconds * 10**9
    short = manager.client.post(
        "/api/v1/tokens", json={"role": "analyst", "valid_seconds": 1}, headers=headers
    ).json()
    assert manager.get("/alerts", token=short["token"]).status_code == 200
    deadline = time.monotonic() + 10
    while time.time_ns() <= short["expires_ns"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert manager.get("/alerts", token=short["token"]).status_code == 401
    never = manager.client.post(
        "/api/v1/tokens", json={"role": "analyst", "valid_seconds": 0}, headers=headers
    )
    assert never.json()["expires_ns"] == 0
