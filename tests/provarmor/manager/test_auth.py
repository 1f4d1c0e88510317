import pytest

from provarmor.manager.auth import (
    Principal,
    Role,
    bearer_token,
    issue_token,
    secret_matches,
    split_token,
)


def test_issued_token_verifies_and_stores_no_secret():
    issued = issue_token()
    token_id, secret = split_token(issued.text)
    assert token_id == issued.id
    assert secret not in (issued.digest, issued.salt)
    assert secret_matches(secret, salt=issued.salt, digest=issued.digest)
    assert not secret_matches("0" * 64, salt=issued.salt, digest=issued.digest)
    assert issue_token().salt != issued.salt


@pytest.mark.parametrize(
    "text", ["", "pa.123.abc", "pb." + "0" * 16 + "." + "0" * 64, "pa." + "g" * 16 + "." + "0" * 64]
)
def test_malformed_tokens_do_not_split(text):
    assert split_token(text) is None


def test_bearer_header():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_admin_holds_analyst_but_not_agent():
    admin = Principal(token_id="a", role=Role.ADMIN)
    analyst = Principal(token_id="b", role=Role.ANALYST)
    assert admin.may(Role.ANALYST) and admin.may(Role.ADMIN)
    assert not admin.may(Role.AGENT)
    assert analyst.may(Role.ANALYST) and not analyst.may(Role.ADMIN)
