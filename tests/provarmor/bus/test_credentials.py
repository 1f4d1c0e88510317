"""Bus credentials: nkeys and JWTs as NATS encodes them, checked by a real nats-server in
operator mode: an agent publishes its own host's events and nothing else, reads its own
commands only; a user signed by a key the account does not list cannot log in."""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS

from provarmor.bus.credentials import (
    SERVICE_PERMISSIONS,
    AccountSigner,
    BusAccess,
    Credentials,
    Trust,
    user_credentials,
)
from provarmor.bus.message import batch_message, subject_for
from provarmor.bus.nkeys import ACCOUNT, NKey, jwt_claims
from provarmor.bus.publisher import BusPublisher, BusUnavailable
from provarmor.bus.stream import StreamLayout, connect, ensure_stream
from provarmor.manager.tls import write_certificates
from provarmor.model.actions import Action
from provarmor.model.errors import ConfigError
from provarmor.testing.factories import make_event
from provarmor.testing.nats import NatsServer, started_secured

HOST = "host-a"
AGENT = "0123456789abcdef"


def test_creds_file_round_trips_and_bad_ones_name_the_file(tmp_path):
    trust = Trust.generate()
    access = trust.signer().issue_agent(AGENT, HOST)
    path = tmp_path / "agent.creds"
    path.write_text(access.to_creds())
    loaded = Credentials.load(path)
    assert loaded == access
    assert loaded.inbox == f"_INBOX.{AGENT}"
    claims = jwt_claims(loaded.jwt)
    assert claims["iss"] == trust.signing_key.public
    assert claims["nats"]["issuer_account"] == trust.account.public
    assert claims["nats"]["pub"]["allow"][0] == subject_for(HOST)
    path.write_text("-----BEGIN NATS USER JWT-----\nabc\n------END NATS USER JWT------\n")
    with pytest.raises(ConfigError, match="JWT and seed") as caught:
        Credentials.load(path)
    assert caught.value.location == str(path)
    with pytest.raises(ConfigError, match="cannot read bus credentials"):
        Credentials.load(tmp_path / "missing.creds")


def test_signer_file_is_versioned(tmp_path):
    signer = Trust.generate().signer()
    path = tmp_path / "signing.json"
    path.write_text(signer.to_json())
    assert AccountSigner.load(path).signing_key.public == signer.signing_key.public
    path.write_text(json.dumps({"version": "9", "account": "A", "signing_key": "S"}))
    with pytest.raises(ConfigError, match="version '9' is not 1"):
        AccountSigner.load(path)
    path.write_text(json.dumps({"version": "1", "account": signer.account}))
    with pytest.raises(ConfigError, match="lacks 'signing_key'"):
        AccountSigner.load(path)


def test_bus_access_from_an_answer_names_what_is_missing():
    access = BusAccess(url="nats://x:1", credentials=Trust.generate().service("w"))
    assert BusAccess.from_dict(access.to_dict(), location="enrol") == access
    with pytest.raises(ConfigError, match="lacks 'seed'") as caught:
        BusAccess.from_dict({"url": "u", "jwt": "j", "inbox": "i"}, location="enrol bus")
    assert caught.value.location == "enrol bus"


@pytest.fixture
def trust() -> Trust:
    return Trust.generate()


@pytest.fixture
def bus(tmp_path: Path, trust: Trust) -> Iterator[NatsServer]:
    server = started_secured(tmp_path, trust)
    yield server
    server.stop()


async def _agent_session(bus: NatsServer, trust: Trust) -> dict[str, object]:
    workers = await connect(bus.url, name="workers", credentials=trust.service("workers"))
    await ensure_stream(workers.jetstream(), StreamLayout(partitions=2))
    refused: list[str] = []

    async def on_error(error: Exception) -> None:
        refused.append(str(error))

    access = trust.signer().issue_agent(AGENT, HOST)
    agent = await nats.connect(bus.url, error_cb=on_error, **access.connect_options())
    js = agent.jetstream(timeout=2)
    own = await js.publish(subject_for(HOST), b"own")
    try:
        await js.publish(subject_for("host-b"), b"another host's events")
        other: object = "stored"
    except nats.errors.TimeoutError:
        other = "no acknowledgement"
    await agent.subscribe(f"provarmor.commands.{AGENT}")
    await agent.subscribe("provarmor.commands.fedcba9876543210")
    await agent.flush()
    deadline = time.monotonic() + 5  # the server's refusal of the subscription comes async
    while not any("subscription" in error for error in refused) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    stored = (await workers.jetstream().stream_info("PROVARMOR_EVENTS")).state.messages
    await agent.close()
    await workers.close()
    return {"own": own.seq, "other": other, "refused": refused, "stored": stored}


def test_an_agent_publishes_its_own_host_only_and_reads_its_own_commands(bus, trust):
    seen = asyncio.run(_agent_session(bus, trust))
    assert seen["own"] == 1
    assert seen["other"] == "no acknowledgement"
    assert seen["stored"] == 1  # the other host's batch never reached the stream
    refused = " ".join(seen["refused"])  # type: ignore[arg-type]
    assert f'permissions violation for publish to "{subject_for("host-b")}"' in refused
    assert 'permissions violation for subscription to "provarmor.commands.fedcba9876543210"' in (
        refused
    )
    assert f"provarmor.commands.{AGENT}" not in refused
    assert "Publish Violation" in (bus.store_dir / "server.log").read_text()


async def _log_in(url: str, credentials: Credentials) -> str:
    client = NATS()
    try:
        await client.connect(
            url, allow_reconnect=False, connect_timeout=2, **credentials.connect_options()
        )
    except (nats.errors.Error, OSError) as exc:
        return f"refused: {exc}"
    finally:
        await client.close()
    return "logged in"


def test_a_user_signed_by_a_key_the_account_does_not_list_cannot_log_in(bus, trust):
    stranger = user_credentials(
        "stranger",
        SERVICE_PERMISSIONS,
        signing_key=NKey.generate(ACCOUNT),
        account=trust.account.public,
    )
    assert asyncio.run(_log_in(bus.url, trust.service("workers"))) == "logged in"
    assert asyncio.run(_log_in(bus.url, stranger)).startswith("refused")


def test_over_tls_an_agent_publishes_trusting_the_managers_ca_only(tmp_path, trust):
    files = write_certificates(tmp_path / "tls", hosts=["127.0.0.1", "localhost"])
    bus = started_secured(tmp_path / "bus", trust, tls=(files.server_cert, files.server_key))
    try:

        async def make_stream() -> None:
            workers = await connect(
                bus.url, name="workers", credentials=trust.service("w"), ca_file=files.ca_cert
            )
            await ensure_stream(workers.jetstream(), StreamLayout(partitions=2))
            await workers.close()

        asyncio.run(make_stream())
        access = trust.signer().issue_agent(AGENT, HOST)
        events = [make_event(Action.READ, ts=1, path="/etc/hosts")]
        message = batch_message(events, agent_id=AGENT, host_id=HOST, sequence=1)
        trusting = BusPublisher(bus.url, credentials=access, ca_file=files.ca_cert)
        assert trusting.publish([message]) == 1
        trusting.close()
        untrusting = BusPublisher(bus.url, credentials=access, connect_timeout_s=3)
        with pytest.raises(BusUnavailable):
            untrusting.publish([message])
        untrusting.close()
    finally:
        bus.stop()
