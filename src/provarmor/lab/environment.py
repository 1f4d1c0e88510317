"""The victim environment scenarios and benign workloads run in, and its guaranteed removal.

:class:`LabEnvironment` turns a :class:`~provarmor.lab.context.LabContext` into real things,
in this order: persist a state file and a snapshot of the watched system files with the
journal of the lab users (so a crash can be undone by :func:`provarmor.lab.cleanup`),
create the lab users, create the network namespaces, start the lab servers and sshds,
start the vulnerable web application. The servers (C2, sinks, DNS, mirror) and the
``remote`` commands are the attacker's side and the lab's plumbing: they run in the
``machinery`` jail, below ProvArmor's own group, so the sensors mark them as ProvArmor's
own. The web application (the victim), the attack steps, the benign workloads and the
other hosts' sshds run in observed jails. Its
:meth:`~LabEnvironment.stop` undoes all of it in reverse, whatever failed: it kills every
process the lab started (cgroup), removes the namespaces, deletes the run's artifacts,
deletes the lab users (exactly the accounts its journal names: another process's account
changes meanwhile survive) and writes back every watched file that changed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import msgspec

from provarmor.lab import accounts, snapshot, webapp
from provarmor.lab.account_journal import AccountJournal
from provarmor.lab.context import PYTHON, LabContext
from provarmor.lab.infrastructure import (
    Server,
    mirror_files,
    start_login_sshd,
    start_services,
    start_sshd,
    wait_for_port,
)
from provarmor.lab.jail import ProcessJail
from provarmor.lab.journal import HostJournal
from provarmor.lab.scheduler import CronScheduler, Job
from provarmor.lab.services import TaskQueue
from provarmor.model.errors import ProvArmorError

STATE_DIR = snapshot.STATE_DIR


class LabCommandError(ProvArmorError):
    """A lab command that had to succeed exited non-zero."""


class RunState(msgspec.Struct, frozen=True, kw_only=True):
    """What a run may leave behind, persisted before it starts (read by ``cleanup``)."""

    format_version: int = 1
    run_id: str
    run_dir: str
    artifacts: tuple[str, ...]
    jails: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Completed:
    """A finished lab command."""

    pid: int
    started_ns: int
    ended_ns: int
    returncode: int
    output: bytes


class LabEnvironment:
    """Use as a context manager; ``artifacts`` are extra paths to remove on stop."""

    def __init__(
        self, ctx: LabContext, *, artifacts: Sequence[str] = (), host_logs: bool = False
    ) -> None:
        self.ctx = ctx
        self.host_logs = host_logs  # the host journal runs; host2's sshd takes passwords
        self.journal = HostJournal()
        self.artifacts = (
            ctx.web.directory,
            str(Path(ctx.web.log).parent),
            str(ctx.run_dir),
            ctx.scratch,
            *artifacts,
        )
        self.victim = ProcessJail(f"v{ctx.names.token(6)}", network=ctx.network.victim.namespace)
        token = ctx.names.token(6)
        self.infra = ProcessJail(f"i{token}")
        self.machinery = ProcessJail(f"m{token}", own=True)
        self.servers: dict[str, Server] = {}
        self.web_pid = 0
        self.spawn_log = ctx.run_dir / "web-spawns.log"
        self.queue = TaskQueue(ctx.run_dir / "c2")
        self.mirror_paths: tuple[str, ...] = ()
        self.scheduler = CronScheduler(
            state=ctx.run_dir / "cron",
            scratch=Path(ctx.scratch),
            observed=self.victim,
            machinery=self.machinery,
        )
        self._snapshot: snapshot.Snapshot | None = None
        self._stopped = True

    def start(self) -> None:
        self._stopped = False
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        ctx = self.ctx
        ctx.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._save_state()
        users = accounts.lab_users(ctx)
        journal = AccountJournal().naming(users=users, groups=users)
        self._snapshot = snapshot.take(ctx.run_id, journal)
        snapshot.save(self._snapshot)
        accounts.create_all(ctx)
        Path(ctx.scratch).mkdir(parents=True, exist_ok=True)
        ctx.network.create()
        self.servers = start_services(ctx, self.machinery)
        self.mirror_paths = tuple(mirror_files_names(ctx))
        if self.host_logs:
            self.journal.start()
        self.servers["host2"] = start_sshd(
            ctx, self.infra, role="host2", hostname=ctx.host2_name, passwords=self.host_logs
        )
        admin_name = f"admin-{ctx.names.token(3)}"
        self.servers["admin"] = start_sshd(ctx, self.infra, role="admin", hostname=admin_name)
        self.servers["login"] = start_login_sshd(ctx, self.victim)
        self._start_webapp()

    def _save_state(self) -> None:
        state = RunState(
            run_id=self.ctx.run_id,
            run_dir=str(self.ctx.run_dir),
            artifacts=self.artifacts,
            jails=(self.victim.name, self.infra.name, self.machinery.name),
        )
        STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        (STATE_DIR / f"state-{self.ctx.run_id}.json").write_bytes(msgspec.json.encode(state))

    def _start_webapp(self) -> None:
        """The victim: the application's file run by the system's interpreter, as installed
        software runs (not by this checkout's virtual environment, which is the lab's and may
        live anywhere, a hidden folder under /tmp included)."""
        web = self.ctx.web
        argv = [
            PYTHON,
            "-I",
            webapp.__file__,
            "--port",
            str(web.port),
            "--user",
            web.user,
            "--directory",
            web.directory,
            "--log",
            web.log,
            "--spawn-log",
            str(self.spawn_log),
            "--bind",
            "0.0.0.0",  # noqa: S104  (every address of the victim's own namespace)
        ]
        with (self.ctx.run_dir / "webapp.err").open("wb") as log:
            process = self.victim.spawn(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
            )
        self.web_pid = process.pid
        wait_for_port(self.ctx.network.victim.address, web.port)

    def will_create_account(self, name: str) -> None:
        """Name a user (and its group) a workload is about to create, so the restore
        removes it whatever happens to the workload (the journal is saved again)."""
        if self._snapshot is None:
            return
        journal = self._snapshot.accounts.naming(users=[name], groups=[name])
        self._snapshot = msgspec.structs.replace(self._snapshot, accounts=journal)
        snapshot.save(self._snapshot)

    def run(  # noqa: PLR0913  (keyword options of one command)
        self,
        command: str,
        *,
        user: str = "",
        timeout: float = 30.0,
        stdin: bytes = b"",
        check: bool = False,
        remote: str = "",
    ) -> Completed:
        """Run ``command`` with /bin/sh as ``user`` (root when empty) in the victim jail
        (and the victim's network namespace).

        With ``remote`` (a lab role) it runs in that role's namespace instead, as the lab's
        stand-in for another machine: in the machinery jail, below ProvArmor's own group, so
        the analysis of this host leaves it out. With ``check``, a
        non-zero exit raises :class:`LabCommandError`."""
        environment = accounts.user_environment(user or "root")
        options: dict[str, object] = {"env": environment, "cwd": environment["HOME"]}
        if user:
            entry = pwd.getpwnam(user)
            options.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        started = time.time_ns()
        argv = ["/bin/sh", "-c", command]
        spawn = self.victim.spawn
        if remote:
            argv, spawn = self.ctx.network.command(remote, argv), self.machinery.spawn
        process = spawn(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **options,
        )
        try:
            output, _ = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            if remote:  # its jail lives on for the next remote command: end its session
                os.killpg(process.pid, signal.SIGKILL)
            process.kill()
            output, _ = process.communicate()
        done = Completed(
            pid=process.pid,
            started_ns=started,
            ended_ns=time.time_ns(),
            returncode=process.returncode,
            output=output,
        )
        if check and done.returncode != 0:
            tail = output.decode("utf-8", "replace")[-300:]
            raise LabCommandError(f"exit {done.returncode}: {command[:120]!r}: {tail}")
        return done

    def login(
        self, user: str, typed: str, *, timeout: float = 60.0, check: bool = False
    ) -> Completed:
        """``user`` logs in to this host over ssh from the workstation (the ``admin`` host,
        as the lab's stand-in for another machine) with a terminal and types ``typed``,
        which must end the session (``exit``). The session's shell is an interactive bash
        on the pseudo-terminal sshd allocated; it reads no start-up files, so a line an
        attack appended to a user's ~/.bashrc stays the attack's own."""
        folder = self.ctx.run_dir / "login"
        argv = [
            "ssh",
            "-tt",
            "-i",
            str(folder / "workstation"),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={folder / 'known_hosts'}",
            "-o",
            "LogLevel=ERROR",
            f"{user}@{self.ctx.network.victim.address}",
            "bash --noprofile --norc --noediting -i",
        ]
        return self.run(
            shlex.join(argv), remote="admin", stdin=typed.encode(), timeout=timeout, check=check
        )

    def type_command(
        self, user: str, command: str, *, timeout: float = 60.0, check: bool = False
    ) -> Completed:
        """:meth:`login` and type ``command`` (one or more lines), run in a subshell on the
        session's terminal, and ``exit`` with its status on the same line: the shell has
        read everything typed before anything runs, so no program that reads the terminal
        (sudo relays it to its own pseudo-terminal) takes typed-ahead lines. No pager
        waits for a key (``git diff`` on a terminal)."""
        return self.login(
            user,
            f"(\nexport PAGER=cat\n{command}\n) </dev/null; exit $?\n",
            timeout=timeout,
            check=check,
        )

    def install(self, path: str, text: str, *, mode: int = 0o644) -> None:
        """Put ``text`` at ``path`` (folders made as needed), as it was before the work
        began (a job's script, a configuration): written by the lab itself, not by a
        process of the recorded work."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def scheduled(
        self, name: str, script: str, *, user: str = "root", timeout: float = 60.0
    ) -> None:
        """Run ``script`` as ``user`` as a cron job (see :mod:`provarmor.lab.scheduler`);
        a non-zero exit raises :class:`LabCommandError`."""
        result = self.scheduler.run(Job(name=name, script=script, user=user), timeout=timeout)
        if result.returncode != 0:
            tail = result.output.decode("utf-8", "replace")[-300:]
            raise LabCommandError(f"cron job {name} exit {result.returncode}: {tail}")

    def stop(self) -> None:
        """Undo everything; never raises, safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        for step in (
            self.victim.kill_all,
            self.infra.kill_all,
            self.machinery.kill_all,
            self.ctx.network.destroy,
            self.journal.stop,
        ):
            with contextlib.suppress(Exception):
                step()
        remove_artifacts(self.artifacts)
        if self._snapshot is not None:
            with contextlib.suppress(Exception):
                snapshot.restore(self._snapshot)
        for name in (f"snapshot-{self.ctx.run_id}.json", f"state-{self.ctx.run_id}.json"):
            with contextlib.suppress(FileNotFoundError):
                (STATE_DIR / name).unlink()
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def mirror_files_names(ctx: LabContext) -> list[str]:
    """The mirror's file names (the mirror itself is filled by the infrastructure)."""
    www = ctx.run_dir / "mirror" / "www"
    if www.is_dir():
        return sorted(str(path.relative_to(www)) for path in www.rglob("*") if path.is_file())
    return sorted(mirror_files(ctx))


def remove_artifacts(paths: Sequence[str]) -> list[str]:
    """Delete each path (file, link or tree) that exists; returns those removed."""
    removed = []
    for name in paths:
        path = Path(name)
        if not name.startswith("/") or path == Path("/") or len(path.parts) < 3:
            continue
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            continue
        removed.append(name)
    return removed
