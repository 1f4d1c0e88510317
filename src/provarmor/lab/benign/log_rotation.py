"""Benign: logrotate rotates and compresses the web application's logs."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload


def run(env: LabEnvironment, rng: random.Random) -> None:
    folder = f"{env.ctx.scratch}/logrotate"
    log = env.ctx.web.log
    config = (
        f"{log} {{\\n  rotate {rng.randrange(2, 6)}\\n  copytruncate\\n  compress\\n"
        f"  missingok\\n  su {env.ctx.web.user} {env.ctx.web.user}\\n}}\\n"
    )
    command = (
        f"mkdir -p {folder} && printf '{config}' > {folder}/web.conf && "
        f"logrotate -f -s {folder}/state {folder}/web.conf && ls -la $(dirname {log})"
    )
    env.run(command, timeout=60, check=True)


WORKLOAD = Workload(
    name="log-rotation",
    title="Log rotation",
    description="Root runs logrotate on the web application's access log: copy, truncate, "
    "compress with gzip, keep a few generations.",
    looks_like="log files truncated and rewritten (log clearing)",
    run=run,
)
