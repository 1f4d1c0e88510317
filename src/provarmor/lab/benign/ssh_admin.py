"""Benign: the administrator, logged in to this host over ssh with a terminal, manages the
administration host over SSH and copies a file there with scp."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload

_SSH = "-o BatchMode=yes -o StrictHostKeyChecking=accept-new"


def run(env: LabEnvironment, rng: random.Random) -> None:
    ctx = env.ctx
    target = f"{ctx.ops_user}@{ctx.address('admin')}"
    remote = rng.sample(
        [
            "hostname",
            "uptime",
            "df -h /",
            "free -m",
            "ps aux | wc -l",
            "sudo -n id",
            "ls -la ~",
            "cat /etc/os-release | head -n 2",
        ],
        k=rng.randrange(2, 5),
    )
    config = f"app-{rng.randrange(100, 999)}.conf"
    command = (
        f"ssh {_SSH} {target} '{'; '.join(remote)}' && "
        f"printf 'workers = {rng.randrange(2, 16)}\\n' > /tmp/{config} && "
        f"scp -q {_SSH} /tmp/{config} {target}:incoming-{config} && rm -f /tmp/{config}"
    )
    env.type_command(ctx.ops_user, command, timeout=60, check=True)


WORKLOAD = Workload(
    name="ssh-admin",
    title="SSH administration of another host",
    description="The administrator, at a terminal of an ssh login to this host, runs a few "
    "commands on the administration host over SSH (with its own key) and copies a configuration "
    "file there with scp.",
    looks_like="SSH lateral movement and lateral tool transfer",
    run=run,
)
