"""The agent side against a real server: uvicorn on 127.0.0.1 over TLS (certificates from
tls.py), ManagerClient enrolment and upload, and UploadSink draining a real spool through an
outage without loss or duplicate."""

import gzip
import socket
import threading
import time
from pathlib import Path

import msgspec
import pytest
import uvicorn

from provarmor.agent.spool import Spool, SpoolPosition
from provarmor.manager.app import create_app
from provarmor.manager.auth import Role
from provarmor.manager.client import ManagerClient, RetryPolicy, UplinkError
from provarmor.manager.database import open_findings_store
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.settings import ManagerSettings
from provarmor.manager.store import EventQuery, Page
from provarmor.manager.tls import write_certificates
from provarmor.manager.uplink import UploadSink
from provarmor.model.event import Event

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, kit):
    """A real manager on 127.0.0.1 over HTTPS, in a thread."""
    directory = tmp_path_factory.mktemp("manager")
    files = write_certificates(directory / "tls", hosts=["127.0.0.1"])
    settings = ManagerSettings(
        state_dir=directory, tls_cert=files.server_cert, tls_key=files.server_key
    )
    store = open_findings_store(settings.effective_database_url())
    app = create_app(settings, store, kit=kit)
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=str(files.server_cert),
        ssl_keyfile=str(files.server_key),
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started
    yield {"url": f"https://127.0.0.1:{port}", "ca": files.ca_cert, "store": store}
    running.should_exit = True
    thread.join(timeout=10)
    app.state.context.ingestor.close()
    store.close()


def _events(count: int | None = None) -> list[Event]:
    lines = gzip.decompress(LAB.read_bytes()).splitlines()
    decoder = msgspec.json.Decoder(Event)
    return [decoder.decode(line) for line in lines[:count]]


def _enrolled(server, host_id=LAB_HOST) -> ManagerClient:
    client = ManagerClient(server["url"], ca_file=server["ca"])
    token = create_token(server["store"], role=Role.ENROLL, valid_ns=60 * 10**9).token
    client.enroll(token, host_id=host_id, hostname="vm")
    return client


def test_client_enrols_and_uploads_over_tls(server):
    client = _enrolled(server)
    events = _events(300)
    ack = client.upload(300, events)
    assert (ack.acked_sequence, ack.duplicate) == (300, False)
    assert client.upload(300, events).duplicate is True
    assert client.acked_sequence() == 300
    client.close()


def test_client_refuses_a_server_it_does_not_trust(server):
    client = ManagerClient(server["url"], retry=RetryPolicy(retries=0))  # system CAs only
    with pytest.raises(UplinkError, match="gave up after 1 attempts"):
        client.enroll("pa.0123456789abcdef." + "0" * 64, host_id="h")
    client.close()


def test_client_does_not_retry_a_refusal(server):
    client = ManagerClient(server["url"], ca_file=server["ca"], retry=RetryPolicy(retries=3))
    started = time.monotonic()
    with pytest.raises(UplinkError, match="HTTP 401"):
        client.enroll("pa.0123456789abcdef." + "0" * 64, host_id="h")
    assert time.monotonic() - started < 1.0
    client.close()


def test_upload_sink_resumes_after_an_outage_without_loss_or_duplicate(server, tmp_path):
    host = "uplink-host"
    events = [
        msgspec.structs.replace(e, host=msgspec.structs.replace(e.host, id=host))
        for e in _events(1200)
    ]
    client = _enrolled(server, host_id=host)
    credential = client.credential
    spool = Spool(
        tmp_path / "spool", max_bytes=64 * 1024 * 1024, fsync=False, consumers=["manager"]
    )
    spool.append(events)

    def make_position(sequence: int) -> SpoolPosition:
        return SpoolPosition(sequence=sequence)

    sink = UploadSink(client, state_file=tmp_path / "uplink.json", make_position=make_position)
    batch = spool.read("manager", 400)
    sink.write(batch.events, batch.position)
    spool.ack("manager", batch.position)
    # outage: the manager is unreachable (nothing listens on the port)
    dead = ManagerClient(
        f"https://127.0.0.1:{_free_port()}",
        credential,
        server["ca"],
        retry=RetryPolicy(retries=1, backoff_s=0.01),
    )
    down = UploadSink(dead, state_file=tmp_path / "uplink.json", make_position=make_position)
    assert down.committed() == SpoolPosition(sequence=400)  # from the last ack seen
    pending = spool.read("manager", 400)
    with pytest.raises(UplinkError):
        down.write(pending.events, pending.position)
    down.close()
    # the manager stored the second batch but the answer was lost: the agent restarts
    client.upload(pending.position.sequence, pending.events)
    client.close()
    spool.close()
    spool = Spool(
        tmp_path / "spool", max_bytes=64 * 1024 * 1024, fsync=False, consumers=["manager"]
    )
    restarted = ManagerClient(server["url"], credential, server["ca"])
    sink = UploadSink(restarted, state_file=tmp_path / "uplink.json", make_position=make_position)
    committed = sink.committed()
    assert committed == SpoolPosition(sequence=800)  # the manager's word
    spool.ack("manager", committed)
    while (batch := spool.read("manager", 400)).events:
        sink.write(batch.events, batch.position)
        spool.ack("manager", batch.position)
    spool.close()
    sink.close()
    agent_id = credential.split(".")[1]
    assert server["store"].agent(agent_id).acked_sequence == 1200
    rows = server["store"].search_events(EventQuery(host=host, page=Page(limit=1000)))
    rows += server["store"].search_events(EventQuery(host=host, page=Page(limit=1000, offset=1000)))
    assert sorted(row.event_id for row in rows) == sorted(e.event.id for e in events)
