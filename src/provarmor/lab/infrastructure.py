"""The lab's remote side, started inside the lab namespaces: the C2 server, the exfiltration
and DNS-like sinks, the benign download mirror, and real OpenSSH servers for the second
host and the administration host (each in its own UTS namespace, so ``hostname`` differs).

These processes are infrastructure, not victims: the ground truth lists their pids so that
evaluation can leave them out. The servers (:func:`start_services`) are the attacker's side
and the lab's plumbing: the environment starts them in its machinery jail, which the sensors
mark as ProvArmor's own, so they never reach this host's analysis. The sshds stand for other
hosts whose sessions the attack uses (lateral movement): they stay in an observed jail.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from provarmor.lab.context import LabContext
from provarmor.lab.jail import ProcessJail
from provarmor.model.errors import ProvArmorError

SSHD = "/usr/sbin/sshd"
LOGIN_KEYS = "login-keys"
"""Folder (under the run's scratch directory) of the keys this host's login sshd trusts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    role: str
    pid: int
    root: Path


def _service_argv(ctx: LabContext, role: str, root: Path, options: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "provarmor.lab.services", "--bind", ctx.address(role)]
    return ctx.network.command(role, [*argv, "--root", str(root), *options])


def _wait_for(path: Path, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"lab server did not start: {path} never appeared")
        time.sleep(0.05)


def wait_for_port(address: str, port: int, *, timeout: float = 15.0) -> None:
    """Block until something accepts on ``address:port`` (checked from this namespace)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise ProvArmorError(
                    f"lab service did not come up within {timeout:.0f} s: {exc}",
                    location=f"{address}:{port}",
                ) from None
            time.sleep(0.05)


def start_services(ctx: LabContext, jail: ProcessJail) -> dict[str, Server]:
    """The C2, sink, DNS and mirror servers; returns them by role once all are ready."""
    c2 = ctx.c2
    plans = {
        "c2": [
            "--http",
            str(c2.http_port),
            "--shell",
            str(c2.shell_port),
            "--beacon",
            c2.beacon_path,
            "--result",
            c2.result_path,
        ],
        "sink": ["--http", str(ctx.sink_http_port), "--tcp", str(ctx.sink_tcp_port)],
        "dns": ["--dns", str(ctx.dns_port)],
        "mirror": ["--http", str(ctx.mirror_port)],
    }
    servers = {}
    for role, options in plans.items():
        root = ctx.run_dir / role
        root.mkdir(parents=True, exist_ok=True)
        if role == "mirror":
            fill_mirror(ctx, root / "www")
        with (root / "server.log").open("wb") as log:
            process = jail.spawn(
                _service_argv(ctx, role, root, options),
                stdout=subprocess.DEVNULL,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        servers[role] = Server(role=role, pid=process.pid, root=root)
    for server in servers.values():
        _wait_for(server.root / "ready")
    return servers


def _sshd_config(
    address: str, root: Path, *, passwords: bool, keys: str = ".ssh/authorized_keys"
) -> Path:
    """Key logins only (``keys``: sshd's AuthorizedKeysFile); with ``passwords``, also PAM
    password logins, logged to syslog."""
    password_lines = (
        ["UsePAM yes", "PasswordAuthentication yes", "SyslogFacility AUTH"]
        if passwords
        else ["UsePAM no", "PasswordAuthentication no"]
    )
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "Port 22",
                f"ListenAddress {address}",
                f"HostKey {root / 'host_ed25519'}",
                f"PidFile {root / 'sshd.pid'}",
                *password_lines,
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                f"AuthorizedKeysFile {keys}",
                "LogLevel VERBOSE",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    return config


def start_sshd(
    ctx: LabContext, jail: ProcessJail, *, role: str, hostname: str, passwords: bool = False
) -> Server:
    """OpenSSH for ``role`` on port 22 of its lab address, with its own host key.

    It logs to ``sshd.log`` in its folder; with ``passwords`` it takes PAM password logins
    and logs to syslog instead (the host journal, where a scenario records host logs)."""
    root = ctx.run_dir / role
    root.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_ed25519")],
        check=True,
        capture_output=True,
    )
    config = _sshd_config(ctx.address(role), root, passwords=passwords)
    log_option = "" if passwords else f" -E {root / 'sshd.log'}"
    inner = f"hostname {hostname} && exec {SSHD} -D -f {config}{log_option}"
    process = jail.spawn(
        ctx.network.command(role, ["unshare", "--uts", "/bin/sh", "-c", inner]),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(ctx.address(role), 22)
    return Server(role=role, pid=process.pid, root=root)


def start_login_sshd(ctx: LabContext, jail: ProcessJail) -> Server:
    """This host's own OpenSSH, where the lab's people log in from their workstation (the
    ``admin`` host) with a terminal: port 22 of the victim's lab address (``jail`` is the
    victim's, which starts it in the victim's network namespace). Each user's authorized
    key is the workstation's, kept in ``LOGIN_KEYS/USER`` under the run's scratch directory
    (readable by the user, as sshd reads it), so no lab user's home changes."""
    root = ctx.run_dir / "login"
    keys = Path(ctx.scratch) / LOGIN_KEYS
    keys.mkdir(parents=True, exist_ok=True)
    keys.chmod(0o755)
    for path, comment in ((root / "host_ed25519", "host"), (root / "workstation", "ws")):
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
        )
    public = (root / "workstation.pub").read_text()
    for user in (ctx.ops_user, ctx.dev_user):
        (keys / user).write_text(public)
        (keys / user).chmod(0o644)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    address = ctx.network.victim.address
    config = _sshd_config(address, root, passwords=False, keys=f"{keys}/%u")
    process = jail.spawn(
        [SSHD, "-D", "-f", str(config), "-E", str(root / "sshd.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(address, 22)
    return Server(role="login", pid=process.pid, root=root)


def _tarball(members: dict[str, tuple[str, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, (text, mode) in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _wheel(package: str, version: str) -> bytes:
    buffer = io.BytesIO()
    dist = f"{package}-{version}.dist-info"
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{package}/__init__.py", f'VERSION = "{version}"\n')
        archive.writestr(
            f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{dist}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        record = f"{package}/__init__.py,,\n{dist}/METADATA,,\n{dist}/WHEEL,,\n{dist}/RECORD,,\n"
        archive.writestr(f"{dist}/RECORD", record)
    return buffer.getvalue()


def mirror_files(ctx: LabContext) -> dict[str, bytes]:
    """What the benign mirror serves: an admin tool tarball, a wheel, a checksum list."""
    tool = f"{ctx.names.pick(('logstat', 'diskcheck', 'certwatch', 'netaudit'))}"
    script = f"#!/bin/sh\necho '{tool} 2.1: all checks passed'\ndf -h / | tail -n 1\n"
    tarball = _tarball({f"{tool}/{tool}": (script, 0o755), f"{tool}/README": ("docs\n", 0o644)})
    package = f"lab{ctx.names.word()}"
    return {
        f"tools/{tool}-2.1.tar.gz": tarball,
        f"simple/{package}/{package}-1.0-py3-none-any.whl": _wheel(package, "1.0"),
        "index.txt": f"{tool}\n{package}\n".encode(),
    }


def fill_mirror(ctx: LabContext, www: Path) -> None:
    for name, data in mirror_files(ctx).items():
        path = www / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
