"""Admin routes: user API tokens and agent enrolment tokens."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from provarmor.manager.auth import Principal, Role, issue_token
from provarmor.manager.deps import ManagerContext, get_context, require
from provarmor.manager.store import FindingsStore, TokenRecord

router = APIRouter(tags=["tokens"])

Context = Annotated[ManagerContext, Depends(get_context)]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


class TokenRequest(BaseModel):
    role: Literal["analyst", "admin"]
    label: str = Field(default="", max_length=200)


class EnrollmentTokenRequest(BaseModel):
    valid_seconds: int | None = Field(default=None, ge=1, le=365 * 86_400)
    label: str = Field(default="", max_length=200)


class IssuedTokenOut(BaseModel):
    id: str
    role: str
    token: str
    """Shown once; only a salted hash is kept."""
    expires_ns: int = 0


def create_token(
    store: FindingsStore, *, role: Role, label: str = "", valid_ns: int = 0
) -> IssuedTokenOut:
    """Make and store a token (used by the routes and by ``provarmor server token``)."""
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


@router.post("/tokens", status_code=201)
def new_token(body: TokenRequest, principal: Admin, context: Context) -> IssuedTokenOut:
    """Create a user API token with role ``analyst`` or ``admin``."""
    return create_token(context.store, role=Role(body.role), label=body.label)


@router.post("/enrollment-tokens", status_code=201)
def new_enrollment_token(
    body: EnrollmentTokenRequest, principal: Admin, context: Context
) -> IssuedTokenOut:
    """Create a one-time agent enrolment token."""
    seconds = body.valid_seconds or context.settings.enrollment_token_seconds
    return create_token(
        context.store, role=Role.ENROLL, label=body.label, valid_ns=seconds * 1_000_000_000
    )
