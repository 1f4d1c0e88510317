"""Scheduled jobs run by a real cron daemon, the way a site's backups and rotations run.

Each job gets a cron daemon of its own (Debian's ``/usr/sbin/cron -f``) in the observed
victim jail, so the recorded process tree is the site's: ``cron`` -> ``cron`` (the job's
child, as the job's user) -> ``/bin/sh -c LINE`` -> the job's script. The daemon must not
run the machine's own crontabs, and the machine's cron must not see the lab's: a holder
process in the lab's machinery jail (ProvArmor's own group) makes a private mount namespace
in which ``/etc/crontab``, ``/etc/cron.d`` and ``/var/spool/cron/crontabs`` are the job's
own folder and ``/run`` (cron's pid file and its once-per-boot marker) is an empty tmpfs;
the daemon is started inside it with ``nsenter``.

Cron starts jobs on minute boundaries, and a lab run records for seconds, so the job's line
is an ``@reboot`` line: the daemon starts the job as soon as it has read its tables (a
private ``/run`` has no marker of an earlier boot), exactly as it starts a timed job, and
is stopped when the job's exit status is written.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from provarmor.lab.jail import ProcessJail
from provarmor.model.errors import ProvArmorError

CRON = "/usr/sbin/cron"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MOUNTS = (
    "mount -t tmpfs -o mode=755 tmpfs /run && "
    "mount --bind {root}/crontab /etc/crontab && "
    "mount --bind {root}/cron.d /etc/cron.d && "
    "mount --bind {root}/spool /var/spool/cron/crontabs && "
    "echo ready && exec sleep {lifetime}"
)


class ScheduledJobError(ProvArmorError):
    """A scheduled job did not run, did not end in time, or exited non-zero."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    returncode: int
    output: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One job: ``script`` (a shell script, installed before cron runs it) as ``user``."""

    name: str
    script: str
    user: str = "root"


class CronScheduler:
    """Runs :class:`Job` s through private cron daemons. ``state`` is root-only (the cron
    tables); ``scratch`` holds the installed scripts and what they print (the job's user
    writes there)."""

    def __init__(
        self, *, state: Path, scratch: Path, observed: ProcessJail, machinery: ProcessJail
    ) -> None:
        self.state = state
        self.scratch = scratch
        self.observed = observed
        self.machinery = machinery
        self._count = 0
        self._lock = threading.Lock()

    def run(self, job: Job, *, timeout: float = 60.0) -> JobResult:
        with self._lock:
            self._count += 1
            number = self._count
        tag = f"{job.name}-{number}"
        root = self.state / tag
        line = self._install(job, tag, root)
        holder = self._private_namespace(root, lifetime=timeout + 30)
        cron: subprocess.Popen[bytes] | None = None
        try:
            cron = self.observed.spawn(
                ["nsenter", f"--mount=/proc/{holder.pid}/ns/mnt", CRON, "-f"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            status = self._wait(line.status, timeout=timeout)
        finally:
            for process in (cron, holder):
                if process is not None:
                    _end(process)
        return JobResult(returncode=status, output=line.output.read_bytes())

    def _install(self, job: Job, tag: str, root: Path) -> _Line:
        """The job's script, its cron table (one ``@reboot`` line in a cron.d file with the
        user column) and the empty files its output and exit status go to."""
        entry = pwd.getpwnam(job.user)
        folder = self.scratch / "cron"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        script = folder / tag
        script.write_text(job.script if job.script.startswith("#!") else f"#!/bin/sh\n{job.script}")
        script.chmod(0o755)
        line = _Line(output=folder / f"{tag}.out", status=folder / f"{tag}.status")
        for path in (line.output, line.status):
            path.write_bytes(b"")
            os.chown(path, entry.pw_uid, entry.pw_gid)
            path.chmod(0o600)
        (root / "cron.d").mkdir(parents=True)
        (root / "spool").mkdir()
        (root / "crontab").write_text("")
        table = root / "cron.d" / tag
        table.write_text(
            f'SHELL=/bin/sh\nPATH={PATH}\nMAILTO=""\n'
            f"@reboot {job.user} {script} >{line.output} 2>&1; echo $? >{line.status}\n"
        )
        table.chmod(0o644)
        return line

    def _private_namespace(self, root: Path, *, lifetime: float) -> subprocess.Popen[bytes]:
        command = _MOUNTS.format(root=root, lifetime=int(lifetime))
        holder = self.machinery.spawn(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != b"ready":
            holder.kill()
            _, error = holder.communicate()
            raise ScheduledJobError(
                f"no private cron namespace: {error.decode(errors='replace')[-300:]}",
                location=str(root),
            )
        return holder

    @staticmethod
    def _wait(status: Path, *, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            text = status.read_text().strip()
            if text:
                return int(text)
            if time.monotonic() > deadline:
                raise ScheduledJobError(
                    f"the job did not end within {timeout:.0f} s", location=str(status)
                )
            time.sleep(0.05)


@dataclass(frozen=True, slots=True)
class _Line:
    output: Path
    status: Path


def _end(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
