"""Admin routes: user API tokens (create, list, revoke) and agent enrolment tokens."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from provarmor.manager.auth import Principal, Role, issue_token
from provarmor.manager.deps import ApiError, ManagerContext, get_context, require
from provarmor.manager.store import FindingsStore, TokenRecord
from provarmor.model.time_units import seconds_to_ns

router = APIRouter(tags=["tokens"])

Context = Annotated[ManagerContext, Depends(get_context)]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
MAX_VALID_SECONDS = 10 * 365 * 86_400


class TokenRequest(BaseModel):
    role: Literal["analyst", "admin"]
    label: str = Field(default="", max_length=200)
    valid_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_VALID_SECONDS,
        description="Lifetime; 0: never expires; absent: the manager's user_token_seconds.",
    )


class EnrollmentTokenRequest(BaseModel):
    valid_seconds: int | None = Field(default=None, ge=1, le=365 * 86_400)
    label: str = Field(default="", max_length=200)


class IssuedTokenOut(BaseModel):
    id: str
    role: str
    token: str
    """Shown once; only a salted hash is kept."""
    expires_ns: int = 0


class TokenOut(BaseModel):
    """A token as listed: never its secret or hash."""

    id: str
    role: str
    label: str
    created_ns: int
    expires_ns: int
    """0: never expires."""
    last_used_ns: int
    """When it last authenticated a request (to the minute); 0: never."""
    revoked_ns: int
    """0: not revoked."""

    @classmethod
    def of(cls, record: TokenRecord) -> TokenOut:
        return cls(
            id=record.id,
            role=record.role.value,
            label=record.label,
            created_ns=record.created_ns,
            expires_ns=record.expires_ns,
            last_used_ns=record.last_used_ns,
            revoked_ns=record.revoked_ns,
        )


def create_token(
    store: FindingsStore, *, role: Role, label: str = "", valid_ns: int = 0
) -> IssuedTokenOut:
    """Make and store a token (used by the routes and by ``provarmor server token``);
    ``valid_ns`` 0: it never expires."""
    issued = issue_token()
    now = time.time_ns()
    expires = now + valid_ns if valid_ns else 0
    store.add_token(
        TokenRecord(
            id=issued.id,
            role=role,
            salt=issued.salt,
            digest=issued.digest,
            created_ns=now,
            expires_ns=expires,
            label=label,
        )
    )
    return IssuedTokenOut(id=issued.id, role=role.value, token=issued.text, expires_ns=expires)


def revoke_token(store: FindingsStore, token_id: str) -> TokenOut:
    """Revoke a token of any role (an agent's credential cuts that agent off); raises
    :class:`ApiError` 404 for an unknown token. Revoking twice keeps the first time."""
    store.revoke_token(token_id, now_ns=time.time_ns())
    record = store.token(token_id)
    if record is None:
        raise ApiError(404, "unknown token", field="token_id")
    return TokenOut.of(record)


@router.post("/tokens", status_code=201)
def new_token(body: TokenRequest, principal: Admin, context: Context) -> IssuedTokenOut:
    """Create a user API token with role ``analyst`` or ``admin``."""
    seconds = body.valid_seconds
    if seconds is None:
        seconds = context.settings.user_token_seconds
    return create_token(
        context.store, role=Role(body.role), label=body.label, valid_ns=seconds_to_ns(seconds)
    )


@router.get("/tokens")
def list_tokens(principal: Admin, context: Context) -> list[TokenOut]:
    """Every token (user, agent and enrolment), oldest first, with its last use."""
    return [TokenOut.of(record) for record in context.store.tokens()]


@router.delete("/tokens/{token_id}")
def delete_token(token_id: str, principal: Admin, context: Context) -> TokenOut:
    """Revoke a token at once: it authenticates nothing from then on."""
    return revoke_token(context.store, token_id)


@router.post("/enrollment-tokens", status_code=201)
def new_enrollment_token(
    body: EnrollmentTokenRequest, principal: Admin, context: Context
) -> IssuedTokenOut:
    """Create a one-time agent enrolment token."""
    seconds = body.valid_seconds or context.settings.enrollment_token_seconds
    return create_token(
        context.store, role=Role.ENROLL, label=body.label, valid_ns=seconds_to_ns(seconds)
    )
