"""A real nats-server (JetStream, file store under tmp_path) per test."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from provarmor.testing.nats import NatsServer, started


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = started(tmp_path / "nats")
    yield server
    server.stop()
