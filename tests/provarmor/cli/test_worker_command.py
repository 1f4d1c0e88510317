import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provarmor.testing.nats import started

PROVARMOR = Path(sys.executable).parent / "provarmor"


@pytest.fixture
def nats_server(tmp_path):
    server = started(tmp_path / "nats")
    yield server
    server.stop()


def worker(*options: str, tmp_path: Path) -> list[str]:
    db = f"sqlite:///{tmp_path / 'manager.db'}"
    return [str(PROVARMOR), "worker", "--db", db, "--state-dir", str(tmp_path), *options]


def test_a_partition_outside_the_stream_is_refused_with_the_option(tmp_path):
    done = subprocess.run(
        worker(
            "--bus",
            "nats://127.0.0.1:1",
            "--partitions",
            "2",
            "--partition",
            "2",
            tmp_path=tmp_path,
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "--partition" in done.stderr
    assert "partition 2 is outside 0..1" in done.stderr


def test_worker_stops_on_sigterm_and_reports_its_counters(nats_server, tmp_path):
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            worker("--bus", nats_server.url, "--partitions", "2", tmp_path=tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "worker of partition 0/2" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert "worker stopped: WorkerCounters(batches=0" in log.read_text()
