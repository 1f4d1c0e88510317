"""The cluster's parts and files: a part that exits on its own is started again after a
growing delay (real processes), ordered stop, addresses and settings refused with the
setting's name, the bus keys kept between starts."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provarmor.bus.credentials import Credentials
from provarmor.bus.nkeys import jwt_claims
from provarmor.cli.cluster import (
    Cluster,
    ClusterSettings,
    Part,
    alive,
    provarmor_command,
    read_state,
    split_address,
    stop_recorded,
)
from provarmor.model.errors import ConfigError

EVENTS: list[str] = []


def _cluster(tmp_path: Path, **settings) -> Cluster:
    EVENTS.clear()
    return Cluster(
        settings=ClusterSettings(state_dir=tmp_path / "c", restart_delay_s=0.1, **settings),
        provarmor=provarmor_command(None, []),
        on_event=EVENTS.append,
    )


def _sleeper(tmp_path: Path, name: str, seconds: float) -> Part:
    return Part(
        name=name,
        command=[sys.executable, "-c", f"import time; time.sleep({seconds})"],
        log_file=tmp_path / f"{name}.log",
    )


def test_a_part_that_exits_is_started_again_after_a_growing_delay_and_counted(tmp_path):
    cluster = _cluster(tmp_path)
    cluster.root.mkdir()
    short = _sleeper(tmp_path, "worker-0", 0.05)
    cluster._launch(short)
    first_pid = short.pid
    end = time.monotonic() + 20
    while short.restarts < 2 and time.monotonic() < end:
        cluster.supervise_once()
        time.sleep(0.02)
    assert short.restarts == 2
    assert short.pid != first_pid
    exits = [line for line in EVENTS if "exited with code 0" in line]
    assert "starting it again in 0.1 s (restart 1" in exits[0]
    assert "starting it again in 0.2 s (restart 2" in exits[1]  # doubled on a quick crash
    saved = read_state(cluster.root)
    assert saved is not None
    assert saved["parts"][0]["restarts"] == 2
    cluster.stop()


def test_stop_ends_workers_before_the_manager_and_nothing_is_restarted(tmp_path):
    cluster = _cluster(tmp_path)
    cluster.root.mkdir()
    manager = _sleeper(tmp_path, "manager", 60)
    worker = _sleeper(tmp_path, "worker-0", 60)
    cluster._launch(manager)
    cluster._launch(worker)
    cluster.stop()
    assert manager.process is not None and worker.process is not None
    assert worker.process.returncode == manager.process.returncode == -15
    cluster.supervise_once()
    assert (worker.restarts, manager.restarts) == (0, 0)
    assert all(part["pid"] == 0 for part in read_state(cluster.root)["parts"])


def test_stop_recorded_ends_parts_a_killed_supervisor_left_behind(tmp_path):
    cluster = _cluster(tmp_path)
    cluster.root.mkdir()
    orphan = _sleeper(tmp_path, "worker-0", 60)
    cluster._launch(orphan)
    cluster.save()
    state = json.loads((cluster.root / "cluster.json").read_text())
    state["supervisor"] = 0  # as after kill -9 of the supervisor
    (cluster.root / "cluster.json").write_text(json.dumps(state))
    lines = stop_recorded(cluster.root)
    assert lines == [f"worker-0 (pid {orphan.pid}) left behind: sent SIGTERM"]
    assert orphan.process is not None
    assert orphan.process.wait(timeout=10) == -15


def test_stop_recorded_takes_a_stopped_supervisor_its_parent_has_not_reaped_as_stopped(
    tmp_path,
):
    """``cluster down`` from another process: the supervisor's parent (here this test)
    reaps it only later; the exited supervisor is a zombie until then, not running."""
    cluster = _cluster(tmp_path)
    cluster.root.mkdir()
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        cluster.save()
        state = json.loads((cluster.root / "cluster.json").read_text())
        state["supervisor"] = supervisor.pid
        (cluster.root / "cluster.json").write_text(json.dumps(state))
        started = time.monotonic()
        lines = stop_recorded(cluster.root, deadline_s=20)
        assert time.monotonic() - started < 10
        assert lines == [f"supervisor {supervisor.pid} stopped"]
        assert not alive(supervisor.pid)
    finally:
        supervisor.kill()
    assert supervisor.wait(timeout=10) == -15


def test_the_bus_keys_are_made_once_and_kept(tmp_path):
    cluster = _cluster(tmp_path)
    cluster.prepare()
    keys = (cluster.root / "bus" / "keys.json").read_text()
    assert (cluster.root / "bus" / "keys.json").stat().st_mode & 0o777 == 0o600
    assert (cluster.root / "bus" / "worker.creds").stat().st_mode & 0o777 == 0o600
    manager = cluster.root / "bus" / "manager.creds"
    assert manager.stat().st_mode & 0o777 == 0o600
    assert jwt_claims(Credentials.load(manager).jwt)["nats"]["sub"]["allow"] == ["_INBOX_MANAGER.>"]
    assert f"manager.bus_credentials={manager}" in cluster._manager_command()
    config = (cluster.root / "bus" / "nats.conf").read_text()
    assert "resolver: MEMORY" in config
    assert "jetstream" in config
    _cluster(tmp_path).prepare()
    assert (cluster.root / "bus" / "keys.json").read_text() == keys
    assert cluster.bus_url == "nats://127.0.0.1:4222"


def test_tls_puts_the_manager_and_the_bus_on_one_certificate(tmp_path):
    cluster = _cluster(tmp_path, tls=True, bus_advertise="bus.example:4222")
    cluster.prepare()
    assert cluster.bus_url == "tls://bus.example:4222"
    assert cluster.manager_url == "https://127.0.0.1:8443"
    assert cluster.ca_file == cluster.root / "tls" / "ca.pem"
    config = (cluster.root / "bus" / "nats.conf").read_text()
    assert f'cert_file: "{cluster.root / "tls" / "server.pem"}"' in config
    assert "--bus-ca" in cluster._worker_command(0)
    assert f"manager.bus_ca={cluster.ca_file}" in cluster._manager_command()


def test_partitions_beyond_the_workers_go_to_workers_elsewhere(tmp_path):
    cluster = _cluster(tmp_path, workers=2, partitions=8)
    command = cluster._worker_command(1)
    assert command[command.index("--partitions") + 1] == "8"
    assert command[command.index("--partition") + 1] == "1"
    claiming = _cluster(tmp_path, workers=2, partitions=8, claim_partitions=True)
    assert "--claim" in claiming._worker_command(1)
    assert "--partition" not in claiming._worker_command(1)


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        ({"workers": 0}, "cluster.workers"),
        ({"workers": 3, "partitions": 2}, "cluster.partitions"),
        ({"listen": "8443"}, "cluster.listen"),
        ({"bus_listen": "127.0.0.1:http"}, "cluster.bus_listen"),
    ],
)
def test_bad_settings_name_the_setting(changes, location):
    with pytest.raises(ConfigError) as caught:
        ClusterSettings(**changes)
    assert caught.value.location == location


def test_split_address():
    assert split_address("[::1]:4222", location="x") == ("::1", 4222)
    with pytest.raises(ConfigError, match="not host:port"):
        split_address(":99999", location="x")


def test_off_loopback_the_cluster_needs_tls(tmp_path):
    with pytest.raises(ConfigError, match="start the cluster with --tls") as caught:
        _cluster(tmp_path, bus_listen="0.0.0.0:4222").prepare()
    assert caught.value.location == "cluster.bus_listen"
    with pytest.raises(ConfigError, match="--bus-advertise"):
        _cluster(tmp_path, bus_listen="0.0.0.0:4222", tls=True).prepare()
    cluster = _cluster(tmp_path, bus_listen="0.0.0.0:4222", bus_advertise="10.0.0.5:4222", tls=True)
    cluster.prepare()
    assert cluster.bus_url == "tls://10.0.0.5:4222"
    assert cluster.local_bus_url == "tls://127.0.0.1:4222"  # the workers here
