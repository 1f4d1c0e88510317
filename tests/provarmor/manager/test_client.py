"""ManagerClient: against the real manager over TLS (enrol, upload, acknowledged sequence,
trust and refusals), and against a scripted loopback HTTP server for what the manager does
not readily do on demand (5xx and 429 answers, lost connections)."""

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest

from provarmor.manager.auth import Role
from provarmor.manager.client import GZIP_ABOVE_BYTES, ManagerClient, RetryPolicy, UplinkError
from provarmor.manager.routes.tokens import create_token
from provarmor.model.event import Event

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
AGENT = "0123456789abcdef"
CREDENTIAL = f"pa.{AGENT}." + "0" * 64
FAST = RetryPolicy(retries=2, backoff_s=0.01, max_backoff_s=0.02)


def _events(count: int) -> list[Event]:
    lines = gzip.decompress(LAB.read_bytes()).splitlines()
    decoder = msgspec.json.Decoder(Event)
    return [decoder.decode(line) for line in lines[:count]]


def _enrolled(https_server) -> ManagerClient:
    client = ManagerClient(https_server["url"], ca_file=https_server["ca"])
    token = create_token(https_server["store"], role=Role.ENROLL, valid_ns=60 * 10**9).token
    client.enroll(token, host_id=LAB_HOST, hostname="vm")
    return client


def test_client_enrols_and_uploads_over_tls(https_server):
    client = _enrolled(https_server)
    assert client.credential.startswith(f"pa.{client.agent_id}.")
    events = _events(300)
    ack = client.upload(300, events)
    assert (ack.acked_sequence, ack.duplicate) == (300, False)
    assert client.upload(300, events).duplicate is True
    assert client.acked_sequence() == 300
    client.report_status({"sensor": "ebpf", "healthy": True})
    stored = https_server["store"].agent(client.agent_id)
    status = json.loads(stored.status_json)
    assert (status["sensor"], status["healthy"]) == ("ebpf", True)
    client.close()


def test_client_refuses_a_server_it_does_not_trust(https_server):
    client = ManagerClient(https_server["url"], retry=RetryPolicy(retries=0))  # system CAs only
    with pytest.raises(UplinkError, match="gave up after 1 attempts"):
        client.enroll(CREDENTIAL, host_id="h")
    client.close()


def test_client_does_not_retry_a_refusal(https_server):
    client = ManagerClient(
        https_server["url"], ca_file=https_server["ca"], retry=RetryPolicy(retries=3)
    )
    started = time.monotonic()
    with pytest.raises(UplinkError, match="HTTP 401: invalid, used or expired enrolment token"):
        client.enroll(CREDENTIAL, host_id="h")
    assert time.monotonic() - started < 1.0
    client.close()


@dataclass
class Scripted:
    """A loopback HTTP server answering from a script of (status, body) and recording what
    it was sent."""

    answers: list[tuple[int, bytes]]
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    script = Scripted(answers=[])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            script.seen.append((self.command, self.path, dict(self.headers), body))
            status, text = script.answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield script
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_5xx_and_429_are_retried_until_success(scripted):
    scripted.answers = [
        (503, b'{"error": "busy"}'),
        (429, b"slow down"),
        (200, b'{"acked_sequence": 7}'),
    ]
    client = ManagerClient(scripted.url, CREDENTIAL, retry=FAST)
    assert client.url == scripted.url.rstrip("/")
    assert client.acked_sequence() == 7
    assert [(method, path) for method, path, _, _ in scripted.seen] == [
        ("GET", f"/api/v1/agents/{AGENT}/batches/acked")
    ] * 3
    assert all(h["Authorization"] == f"Bearer {CREDENTIAL}" for _, _, h, _ in scripted.seen)
    client.close()


def test_giving_up_names_the_last_problem(scripted):
    scripted.answers = [(500, b"x"), (502, b'{"error": "gateway"}'), (503, b'{"error": "busy"}')]
    client = ManagerClient(scripted.url, CREDENTIAL, retry=FAST)
    with pytest.raises(UplinkError, match="gave up after 3 attempts: HTTP 503: busy") as caught:
        client.report_status({})
    assert caught.value.location == f"{client.url}/api/v1/agents/{AGENT}/status"
    client.close()


def test_refusal_message_is_the_body_when_it_is_not_json(scripted):
    scripted.answers = [(400, b"plain words")]
    client = ManagerClient(scripted.url, CREDENTIAL, retry=FAST)
    with pytest.raises(UplinkError, match="HTTP 400: plain words"):
        client.report_status({"x": 1})
    assert len(scripted.seen) == 1
    assert json.loads(scripted.seen[0][3]) == {"x": 1}
    client.close()


def test_large_batches_are_gzipped_small_ones_not(scripted):
    events = _events(40)
    scripted.answers = [
        (200, b'{"acked_sequence": 1, "duplicate": false}'),
        (200, b'{"acked_sequence": 40, "duplicate": true}'),
    ]
    client = ManagerClient(scripted.url, CREDENTIAL, retry=FAST)
    assert client.upload(1, events[:1]).acked_sequence == 1
    ack = client.upload(40, events)
    assert (ack.acked_sequence, ack.duplicate) == (40, True)
    (_, path, small_headers, small), (_, _, large_headers, large) = scripted.seen
    assert path == f"/api/v1/agents/{AGENT}/batches"
    assert small_headers["X-Batch-Sequence"] == "1"
    assert "Content-Encoding" not in small_headers
    assert len(small) <= GZIP_ABOVE_BYTES
    assert small.count(b"\n") == 1
    assert large_headers["X-Batch-Sequence"] == "40"
    assert large_headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(large).count(b"\n") == 40
    client.close()


def test_unreachable_manager_is_retried_then_given_up():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ManagerClient(f"http://127.0.0.1:{port}", CREDENTIAL, retry=FAST)
    with pytest.raises(UplinkError, match="gave up after 3 attempts: ConnectError"):
        client.acked_sequence()
    client.close()


def test_agent_id_needs_a_credential():
    client = ManagerClient("http://127.0.0.1:9")
    with pytest.raises(UplinkError, match="no agent credential: enrol first"):
        _ = client.agent_id
    client.close()
    assert ManagerClient("http://127.0.0.1:9", CREDENTIAL).agent_id == AGENT


@pytest.mark.parametrize("version", [1, 2])
def test_enrolment_answers_of_every_version_read(scripted, data_dir, version):
    answer = (data_dir / "manager" / f"enrolment-v{version}.json").read_bytes()
    scripted.answers = [(201, answer)]
    client = ManagerClient(scripted.url, retry=FAST)
    assert client.enroll("pa.x", host_id="lab-host-2") == f"pa.{AGENT}." + "1" * 64
    if version == 1:
        assert client.bus is None
    else:
        assert client.bus is not None
        assert client.bus.url == "nats://10.0.0.1:4222"
        assert client.bus.credentials.inbox == f"_INBOX.{AGENT}"
    client.close()


def test_an_enrolment_answer_of_an_unknown_version_is_refused(scripted):
    scripted.answers = [(201, b'{"version": 3, "agent_id": "a", "credential": "c"}')]
    client = ManagerClient(scripted.url, retry=FAST)
    with pytest.raises(UplinkError, match="enrolment answer version 3 is unknown") as caught:
        client.enroll("pa.x", host_id="h")
    assert caught.value.location.endswith("/api/v1/enroll")
    client.close()
