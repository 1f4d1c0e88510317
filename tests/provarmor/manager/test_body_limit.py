"""The request body limit on a real manager (uvicorn on loopback) with a raw streaming client:
an oversized body is refused with 413 while it is being sent, before any parsing, and the
manager's memory does not grow with what the client sends."""

import json
import select
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from provarmor.manager.app import create_app
from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.settings import ManagerSettings

MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, kit):
    """A manager served by uvicorn on 127.0.0.1 in this process: ``(port, store)``."""
    directory: Path = tmp_path_factory.mktemp("manager")
    settings = ManagerSettings(state_dir=directory, max_upload_bytes=2 * MIB)
    store = open_findings_store(settings.effective_database_url())
    app = create_app(settings, store, kit=kit)
    port = _free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started
    yield port, store
    running.should_exit = True
    thread.join(timeout=10)
    app.state.context.ingestor.close()
    store.close()


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _read_response(connection: socket.socket, deadline: float) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        connection.settimeout(max(deadline - time.monotonic(), 0.01))
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body[: _length(data)])


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _stream(port: int, path: str, *, total: int, headers: dict[str, str], chunked: bool):
    """Send a JSON-ish body of ``total`` bytes, stopping as soon as the server answers.
    Returns (status, answer, bytes sent)."""
    connection = socket.create_connection(("127.0.0.1", port))
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    piece = b'{"token": "' + b"a" * (MIB - 11)
    sent = 0
    deadline = time.monotonic() + 120
    with connection:
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([connection], [connection], [], 1.0)
            if readable:
                break
            if not writable:
                continue
            frame = (b"%x\r\n" % len(piece) + piece + b"\r\n") if chunked else piece
            try:
                connection.send(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        status, answer = _read_response(connection, time.monotonic() + 10)
    return status, answer, sent


def test_declared_oversized_body_is_refused_before_it_is_sent(server):
    port, _ = server
    connection = socket.create_connection(("127.0.0.1", port))
    with connection:
        connection.sendall(
            b"POST /api/v1/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 314572800\r\n\r\n"
        )
        status, answer = _read_response(connection, time.monotonic() + 10)
    assert status == 413
    assert answer == {"error": "request body over 65536 bytes", "field": "body"}


@pytest.mark.parametrize("chunked", [True, False])
def test_300_mib_enrolment_is_refused_early_and_memory_stays_flat(server, chunked):
    port, _ = server
    before = _rss()
    status, answer, sent = _stream(
        port, "/api/v1/enroll", total=300 * MIB, headers={}, chunked=chunked
    )
    grown = _rss() - before
    assert status == 413, answer
    assert answer["field"] == "body"
    # what socket buffers took before the answer came, not the 300 MiB
    assert sent < 32 * MIB
    assert grown < 32 * MIB


def _enrol(port: int, store) -> tuple[str, str]:
    token = create_token(store, role=Role.ENROLL).token
    answer = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/enroll", json={"token": token, "host_id": "h-limit"}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["agent_id"], answer.json()["credential"]


def test_upload_route_has_its_own_larger_limit(server):
    port, store = server
    agent_id, credential = _enrol(port, store)
    status, answer, sent = _stream(
        port,
        f"/api/v1/agents/{agent_id}/batches",
        total=50 * MIB,
        headers={"Authorization": f"Bearer {credential}", "X-Batch-Sequence": "1"},
        chunked=True,
    )
    assert status == 413
    assert answer == {"error": f"request body over {2 * MIB} bytes", "field": "body"}
    assert sent < 34 * MIB
