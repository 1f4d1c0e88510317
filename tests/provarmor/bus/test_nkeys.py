"""nkeys and JWTs in NATS's encodings (nats-server itself checks them in
test_credentials.py)."""

import pytest

from provarmor.bus.nkeys import ACCOUNT, USER, NKey, encode_jwt, jwt_claims
from provarmor.model.errors import ConfigError


def test_nkey_seed_and_public_key_round_trip():
    key = NKey.generate(USER)
    assert key.seed.startswith("SU")
    assert key.public.startswith("U")
    again = NKey.from_seed(key.seed)
    assert (again.kind, again.public) == (USER, key.public)
    assert NKey.generate(ACCOUNT).public.startswith("A")


def test_a_damaged_seed_is_refused_with_its_location():
    seed = NKey.generate(USER).seed
    damaged = seed[:10] + ("A" if seed[10] != "A" else "B") + seed[11:]
    with pytest.raises(ConfigError, match="checksum") as caught:
        NKey.from_seed(damaged, location="agent.creds")
    assert caught.value.location == "agent.creds"
    with pytest.raises(ConfigError, match="not an nkey seed"):
        NKey.from_seed(NKey.generate(USER).public)


def test_a_jwt_carries_its_claims_signed_by_its_issuer():
    signer = NKey.generate(ACCOUNT)
    token = encode_jwt({"sub": "U1", "nats": {"type": "user"}}, signer)
    claims = jwt_claims(token)
    assert claims["iss"] == signer.public
    assert claims["sub"] == "U1"
    assert claims["jti"]
    with pytest.raises(ConfigError, match="not a JWT"):
        jwt_claims("garbage")
