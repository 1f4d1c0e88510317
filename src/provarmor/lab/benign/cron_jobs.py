"""Benign: scheduled maintenance jobs: cron runs run-parts over a job directory as root
(temp clean-up, a file index, a package-list backup, disk usage)."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload

_JOBS = {
    "10-tmp-clean": "find {scratch}/work -type f -mmin +1 -delete 2>/dev/null; exit 0",
    "20-file-index": "find /usr/share/doc -maxdepth 1 -type d | sort > {scratch}/jobs/index.txt",
    "30-pkg-list": "dpkg-query -W -f='${{Package}} ${{Version}}\\n' > {scratch}/jobs/packages.txt",
    "40-disk-usage": "df -P > {scratch}/jobs/df.txt; du -s /var/log 2>/dev/null | tail -n 1",
}


def run(env: LabEnvironment, rng: random.Random) -> None:
    scratch = env.ctx.scratch
    jobs = f"{scratch}/cron.daily"
    for name, text in _JOBS.items():  # the job directory as the administrator set it up
        env.install(f"{jobs}/{name}", f"#!/bin/sh\n{text.format(scratch=scratch)}\n", mode=0o755)
    chosen = rng.sample(sorted(_JOBS), k=rng.randrange(2, len(_JOBS) + 1))
    env.install(f"{scratch}/work/old-{rng.randrange(1000)}", "")
    pattern = "|".join(name.split("-", 1)[0] for name in sorted(chosen))
    env.scheduled(
        "daily",
        f"mkdir -p {scratch}/jobs {scratch}/work && "
        f"run-parts --report --regex '^({pattern})-' {jobs}\n",
    )


WORKLOAD = Workload(
    name="cron-jobs",
    title="Scheduled maintenance jobs",
    description="Cron runs run-parts over a job directory as root: deleting old temporary files, "
    "indexing documentation directories, saving the package list and measuring disk "
    "usage.",
    looks_like="root scripts in a job directory run non-interactively",
    run=run,
)
