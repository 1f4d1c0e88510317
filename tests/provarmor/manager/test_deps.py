"""What routes depend on: the manager context, Bearer authentication (one 401 for every bad
token), role checks (403) and agents writing only as themselves."""

import time

import pytest
from starlette.requests import Request

from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import (
    ApiError,
    ManagerContext,
    authenticate,
    get_context,
    require,
    require_agent,
)
from provarmor.manager.routes.tokens import create_token

REFUSED = "missing or invalid bearer token"


@pytest.fixture
def opened(make_manager, tmp_path):
    return make_manager(tmp_path)


def _request(opened, authorization: str | None = None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "headers": headers, "app": opened.client.app})


def _refused(call) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    assert (caught.value.status, caught.value.message) == (401, REFUSED)
    assert caught.value.field == "Authorization"
    return caught.value


def test_context_is_the_applications(opened):
    context = get_context(_request(opened))
    assert isinstance(context, ManagerContext)
    assert context.store is opened.store
    assert context.settings is opened.settings


def test_valid_token_names_its_holder(opened):
    issued = create_token(opened.store, role=Role.ANALYST)
    principal = authenticate(_request(opened, f"Bearer {issued.token}"))
    assert principal == Principal(token_id=issued.id, role=Role.ANALYST)
    assert authenticate(_request(opened, f"bearer   {issued.token} ")).token_id == issued.id


def test_every_bad_token_gets_the_same_401(opened):
    good = opened.admin
    enroll = create_token(opened.store, role=Role.ENROLL).token
    expired = create_token(opened.store, role=Role.ADMIN, valid_ns=1).token
    time.sleep(0.001)
    wrong_secret = good[:-1] + ("0" if not good.endswith("0") else "1")
    for header in (
        None,
        "",
        f"Basic {good}",
        "Bearer not-a-token",
        "Bearer pa.0123456789abcdef." + "0" * 64,
        f"Bearer {enroll}",
        f"Bearer {expired}",
        f"Bearer {wrong_secret}",
    ):
        _refused(lambda header=header: authenticate(_request(opened, header)))


def test_require_checks_the_role(opened):
    analyst = create_token(opened.store, role=Role.ANALYST).token
    admin_request = _request(opened, f"Bearer {opened.admin}")
    assert require(Role.ADMIN)(admin_request).role is Role.ADMIN
    assert require(Role.ANALYST)(admin_request).role is Role.ADMIN  # admins hold analyst
    with pytest.raises(ApiError) as caught:
        require(Role.ADMIN)(_request(opened, f"Bearer {analyst}"))
    assert (caught.value.status, caught.value.message) == (403, "this needs the admin role")
    _refused(lambda: require(Role.ANALYST)(_request(opened)))


def test_agent_writes_only_as_itself(opened):
    agent_id, credential = opened.enroll()
    other_id, _ = opened.enroll(host_id="other-host")
    own = require_agent(_request(opened, f"Bearer {credential}"), agent_id)
    assert own == Principal(token_id=agent_id, role=Role.AGENT)
    with pytest.raises(ApiError) as caught:
        require_agent(_request(opened, f"Bearer {credential}"), other_id)
    assert (caught.value.status, caught.value.field) == (403, "agent_id")
    with pytest.raises(ApiError) as caught:
        require_agent(_request(opened, f"Bearer {opened.admin}"), agent_id)
    assert (caught.value.status, caught.value.message) == (403, "this needs the agent role")


def test_api_error_carries_its_answer():
    error = ApiError(413, "too big", field="body")
    assert (error.status, error.message, error.field, str(error)) == (
        413,
        "too big",
        "body",
        "too big",
    )
    assert ApiError(404, "gone").field == ""
