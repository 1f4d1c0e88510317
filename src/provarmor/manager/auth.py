"""Tokens: user API tokens (roles ``analyst`` and ``admin``), agent credentials (role
``agent``) and one-time enrolment tokens.

A token reads ``pa.<id>.<secret>``: ``id`` (16 hex digits) finds its record, ``secret`` (64 hex
digits, 256 random bits) proves possession. Only a salted SHA-256 digest of the secret is
stored; checks compare digests in constant time. A fast hash is enough because the secrets
are random, not chosen by people. An agent's credential id is its agent id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "pa"  # noqa: S105 (the prefix of every token, not a secret)
_TOKEN = re.compile(r"^pa\.([0-9a-f]{16})\.([0-9a-f]{64})$")


class Role(StrEnum):
    ANALYST = "analyst"
    """Reads everything; acknowledges, resolves and annotates incidents."""
    ADMIN = "admin"
    """Everything an analyst may do, plus tokens and enrolment tokens."""
    AGENT = "agent"
    """Uploads its own host's events and status; reads nothing."""
    ENROLL = "enroll"
    """A one-time enrolment token: good for ``POST /enroll`` once, before it expires."""


USER_ROLES = (Role.ANALYST, Role.ADMIN)


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    """A token just made: ``text`` is shown once; only ``salt`` and ``digest`` are stored."""

    id: str
    text: str
    salt: str
    digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: the token's id and role (for agents, the id is the agent id)."""

    token_id: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this principal holds ``role`` (admins hold analyst too)."""
        if self.role is role:
            return True
        return self.role is Role.ADMIN and role is Role.ANALYST


def digest_secret(secret: str, *, salt: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def issue_token() -> IssuedToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_hex(32)
    salt = secrets.token_hex(16)
    return IssuedToken(
        id=token_id,
        text=f"{TOKEN_PREFIX}.{token_id}.{secret}",
        salt=salt,
        digest=digest_secret(secret, salt=salt),
    )


def split_token(text: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else ``None``."""
    match = _TOKEN.fullmatch(text.strip())
    if match is None:
        return None
    return match.group(1), match.group(2)


def secret_matches(secret: str, *, salt: str, digest: str) -> bool:
    return hmac.compare_digest(digest_secret(secret, salt=salt), digest)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, else ``None``."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
