"""Benign: nightly backups, run by cron as a site runs them: root's job archives
configuration and the web directory with tar and mirrors it with rsync; the administrator's
own job rsyncs notes to the administration host over SSH."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload

_SSH = "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"


def run(env: LabEnvironment, rng: random.Random) -> None:
    ctx = env.ctx
    backups = f"{ctx.scratch}/backups"
    stamp = rng.randrange(100000, 999999)
    env.scheduled(
        "backup",
        f"mkdir -p {backups} && tar czf {backups}/etc-web-{stamp}.tgz /etc/hostname /etc/hosts "
        f"/etc/passwd {ctx.web.directory} 2>/dev/null; rsync -a {ctx.web.directory}/ "
        f"{backups}/web-mirror/ && ls -la {backups}\n",
    )
    env.scheduled(
        "notes-backup",
        f"mkdir -p ~/notes && date > ~/notes/last-backup && "
        f"rsync -a -e '{_SSH}' ~/notes/ {ctx.ops_user}@{ctx.address('admin')}:notes-backup/\n",
        user=ctx.ops_user,
    )


WORKLOAD = Workload(
    name="backup",
    title="Backups with tar and rsync",
    description="Cron jobs: root's archives configuration (including /etc/passwd) and the web "
    "directory with tar and mirrors the web directory with rsync; the administrator's "
    "rsyncs notes to the administration host over SSH.",
    looks_like="collection and archiving (tar of sensitive files), transfer over SSH",
    run=run,
)
