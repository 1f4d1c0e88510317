"""The lab's users and their home directories: the web service account, an administrator
with an SSH key and sudo, and a developer.

Created before recording starts, after the run's account journal has named them
(:func:`lab_users`); the restore removes exactly those (``userdel -r``). The
administrator's history and the web application's config hold plausible secrets, which the
credential-theft scenarios go looking for.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from provarmor.lab.context import LabContext


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=30)


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _write(path: Path, text: str, *, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def create_web_user(ctx: LabContext) -> None:
    """The service account the web application runs as, its directory and log directory."""
    web = ctx.web
    _run(
        "useradd",
        "--system",
        "--home-dir",
        web.directory,
        "--create-home",
        "--shell",
        "/usr/sbin/nologin",
        web.user,
    )
    directory = Path(web.directory)
    secret = ctx.names.token(16)
    _write(
        directory / "config.ini",
        f"[database]\nuser = app\npassword = {secret}\nhost = 127.0.0.1\n",
        mode=0o640,
    )
    _write(directory / "static" / "index.txt", "netcheck static files\n")
    log_dir = Path(web.log).parent
    log_dir.mkdir(parents=True, exist_ok=True)
    Path(web.log).touch()
    _chown_tree(directory, web.user)
    _chown_tree(log_dir, web.user)


def _history(ctx: LabContext) -> str:
    host2 = ctx.address("host2")
    admin = ctx.address("admin")
    password = ctx.names.token(12)
    return "\n".join(
        [
            "df -h",
            f"ssh {host2} uptime",
            "sudo tail -n 50 /var/log/syslog",
            f"mysql -u app -p{password} -h 127.0.0.1 appdb",
            f"rsync -a /srv/ {admin}:/backup/",
            "ps aux --sort=-%mem | head",
            f"ssh {ctx.ops_user}@{host2}",
            "",
        ]
    )


def create_admin(ctx: LabContext) -> None:
    """The administrator: bash, an ed25519 key trusted by the lab hosts, sudo, a history."""
    user = ctx.ops_user
    _run("useradd", "--create-home", "--shell", "/bin/bash", user)
    _run("usermod", "-p", "*", user)
    home = Path(ctx.home(user))
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    _run(
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        f"{user}@lab",
        "-f",
        str(ssh / "id_ed25519"),
    )
    public = (ssh / "id_ed25519.pub").read_text()
    _write(ssh / "authorized_keys", public, mode=0o600)
    _write(ssh / "config", "Host *\n    StrictHostKeyChecking accept-new\n", mode=0o600)
    _write(home / ".bash_history", _history(ctx), mode=0o600)
    _chown_tree(home, user)
    _write(
        Path(f"/etc/sudoers.d/{ctx.names.word()}"), f"{user} ALL=(ALL) NOPASSWD: ALL\n", mode=0o440
    )


def create_developer(ctx: LabContext) -> None:
    """The developer: bash, a git identity, a projects directory."""
    user = ctx.dev_user
    _run("useradd", "--create-home", "--shell", "/bin/bash", user)
    _run("usermod", "-p", "*", user)
    home = Path(ctx.home(user))
    _write(home / ".gitconfig", f"[user]\n\tname = {user}\n\temail = {user}@example.lab\n")
    (home / "projects").mkdir(exist_ok=True)
    _chown_tree(home, user)


def lab_users(ctx: LabContext) -> tuple[str, ...]:
    """The users :func:`create_all` creates (each with a group of the same name)."""
    return (ctx.web.user, ctx.ops_user, ctx.dev_user)


def create_all(ctx: LabContext) -> None:
    create_web_user(ctx)
    create_admin(ctx)
    create_developer(ctx)


def user_environment(user: str) -> dict[str, str]:
    """A login-like environment for ``user`` (what sudo -i or cron would give)."""
    entry = pwd.getpwnam(user)
    return {
        "HOME": entry.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "SHELL": entry.pw_shell,
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
