"""The manager's command signing key: made once, owner-only, read back the same; its
public half verifies its signatures and nothing else; bad key files are named."""

import pytest

from provarmor.bus.signing import SigningKey, VerifyKey
from provarmor.model.errors import ConfigError


def test_the_key_is_made_once_owner_only_and_read_back(tmp_path):
    path = tmp_path / "state" / "command-signing.key"
    made = SigningKey.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = SigningKey.load_or_create(path)
    assert again.verify_key == made.verify_key
    assert len(made.verify_key.public) == 32
    assert len(made.verify_key.id) == 16


def test_a_signature_verifies_with_its_key_only(tmp_path):
    key = SigningKey.load_or_create(tmp_path / "a")
    other = SigningKey.load_or_create(tmp_path / "b")
    signature = key.sign(b"kill 4242")
    assert key.verify_key.verifies(b"kill 4242", signature)
    assert not key.verify_key.verifies(b"kill 4243", signature)
    assert not other.verify_key.verifies(b"kill 4242", signature)
    served = VerifyKey.from_text(key.verify_key.text(), location="manager")
    assert served == key.verify_key


def test_bad_keys_are_named(tmp_path):
    with pytest.raises(ConfigError) as caught:
        VerifyKey.from_text("not base64!", location="https://manager/command-key")
    assert caught.value.location == "https://manager/command-key"
    with pytest.raises(ConfigError):
        VerifyKey.from_text("AAAA", location="short")  # 3 bytes: no Ed25519 key
    broken = tmp_path / "broken.key"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        SigningKey.load_or_create(broken)
    assert caught.value.location == str(broken)
