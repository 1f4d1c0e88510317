"""NATS nkeys and JWTs: Ed25519 keys in NATS's text form, and claims signed with them.

An nkey is base32 (no padding) of a prefix byte (its kind: operator, account, user), the
32-byte Ed25519 key and a CRC-16/XMODEM (little-endian); a seed has two prefix bytes. A JWT is
``header.claims.signature``, each base64url without padding, ``alg: ed25519-nkey``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provarmor.model.errors import ConfigError

if TYPE_CHECKING:  # cryptography is imported when keys are used, not by `provarmor --help`
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

OPERATOR = 14 << 3  # "O"
ACCOUNT = 0  # "A"
USER = 20 << 3  # "U"
_SEED = 18 << 3  # "S"


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _armour(raw: bytes) -> str:
    checked = raw + _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(checked).decode().rstrip("=")


def _unarmour(text: str, *, location: str) -> bytes:
    try:
        checked = base64.b32decode(text + "=" * (-len(text) % 8))
    except binascii.Error:
        raise ConfigError("not an nkey (base32)", location=location) from None
    raw, crc = checked[:-2], checked[-2:]
    if len(raw) < 33 or _crc16(raw).to_bytes(2, "little") != crc:
        raise ConfigError("not an nkey (checksum)", location=location)
    return raw


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class NKey:
    """An Ed25519 key pair of one kind (operator, account or user)."""

    kind: int
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls, kind: int) -> NKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(kind, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: str, *, location: str = "seed") -> NKey:
        raw = _unarmour(seed, location=location)
        if raw[0] & 0xF8 != _SEED or len(raw) != 34:
            raise ConfigError("not an nkey seed", location=location)
        kind = ((raw[0] & 0x07) << 5) | (raw[1] >> 3)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(kind, Ed25519PrivateKey.from_private_bytes(raw[2:]))

    @property
    def seed(self) -> str:
        from cryptography.hazmat.primitives import serialization

        secret = self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return _armour(bytes([_SEED | (self.kind >> 5), (self.kind & 31) << 3]) + secret)

    @property
    def public(self) -> str:
        from cryptography.hazmat.primitives import serialization

        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return _armour(bytes([self.kind]) + raw)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def encode_jwt(claims: dict[str, Any], signer: NKey) -> str:
    """``claims`` (``iss`` set to the signer, ``iat`` and ``jti`` filled) as a signed JWT."""
    body = dict(claims, iss=signer.public, iat=int(time.time()), jti="")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    signature = _b64(signer.sign(f"{header}.{payload}".encode()))
    return f"{header}.{payload}.{signature}"


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (not verified: the server verifies them)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise ConfigError("not a JWT", location="jwt") from None
    if not isinstance(claims, dict):
        raise ConfigError("not a JWT", location="jwt")
    return claims
