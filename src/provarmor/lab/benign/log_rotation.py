"""Benign: cron runs logrotate, which rotates and compresses the web application's logs."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload


def run(env: LabEnvironment, rng: random.Random) -> None:
    folder = f"{env.ctx.scratch}/logrotate"
    log = env.ctx.web.log
    env.install(
        f"{folder}/web.conf",
        f"{log} {{\n  rotate {rng.randrange(2, 6)}\n  copytruncate\n  compress\n"
        f"  missingok\n  su {env.ctx.web.user} {env.ctx.web.user}\n}}\n",
    )
    env.scheduled(
        "logrotate",
        f"logrotate -f -s {folder}/state {folder}/web.conf && ls -la $(dirname {log})\n",
    )


WORKLOAD = Workload(
    name="log-rotation",
    title="Log rotation",
    description="Cron runs logrotate as root on the web application's access log: copy, truncate, "
    "compress with gzip, keep a few generations.",
    looks_like="log files truncated and rewritten (log clearing)",
    run=run,
)
