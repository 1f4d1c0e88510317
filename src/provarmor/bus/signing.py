"""The manager's command signing key (Ed25519).

The manager signs every response command it puts on the bus; an agent runs a command only
when the signature verifies against the manager's public key, which it fetched over its
authenticated HTTPS uplink. The private key lives in one owner-only file of the manager's
state directory (PEM, PKCS#8), made on first use.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provarmor.model.errors import ConfigError

ALGORITHM = "ed25519"


def key_id(public: bytes) -> str:
    """A short name of a public key (said in every signed message)."""
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A public key that checks signatures."""

    public: bytes
    """The raw 32-byte Ed25519 public key."""

    @property
    def id(self) -> str:
        return key_id(self.public)

    @classmethod
    def from_text(cls, text: str, *, location: str) -> VerifyKey:
        """The key from its base64 text (as the manager serves it)."""
        try:
            public = base64.b64decode(text, validate=True)
            Ed25519PublicKey.from_public_bytes(public)
        except ValueError as exc:
            raise ConfigError(f"not an Ed25519 public key: {exc}", location=location) from None
        return cls(public)

    def text(self) -> str:
        return base64.b64encode(self.public).decode()

    def verifies(self, data: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, data)
        except InvalidSignature:
            return False
        return True


class SigningKey:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.verify_key = VerifyKey(
            private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """The key in ``path``; a new one (written owner-only) when there is none."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
            return cls(private)
        try:
            loaded = serialization.load_pem_private_key(data, password=None)
        except ValueError as exc:
            raise ConfigError(
                f"unreadable command signing key: {exc}", location=str(path)
            ) from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ConfigError("the command signing key is not Ed25519", location=str(path))
        return cls(loaded)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)
