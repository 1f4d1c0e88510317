"""Benign: an administrator's interactive shell session (an ssh login with a terminal) with
sudo: account checks that read /etc/shadow, process and socket listings, a temporary
account."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload


def _commands(env: LabEnvironment, rng: random.Random) -> list[str]:
    ops = env.ctx.ops_user
    temporary = f"tmp{rng.randrange(1000, 9999)}"
    env.will_create_account(temporary)
    pool = [
        "uptime",
        "df -h",
        "free -m",
        "ps aux --sort=-%cpu | head -n 5",
        "ss -tln",
        "id",
        f"sudo -n chage -l {ops}",
        f"sudo -n passwd -S {ops}",
        "sudo -n grep -c : /etc/shadow",
        "sudo -n ls -la /root",
        "last -n 3 2>/dev/null; true",
        f"sudo -n useradd -M -s /usr/sbin/nologin {temporary} && sudo -n userdel {temporary}",
        "sudo -n tail -n 5 /var/log/dpkg.log",
        "ip addr show lo",
    ]
    return rng.sample(pool, k=rng.randrange(5, len(pool)))


def run(env: LabEnvironment, rng: random.Random) -> None:
    env.type_command(env.ctx.ops_user, "\n".join(_commands(env, rng)), timeout=60, check=True)


WORKLOAD = Workload(
    name="admin-shell",
    title="Interactive administration session",
    description="The administrator logs in over ssh and works in an interactive bash on the "
    "session's terminal: uptime, df, ps, ss, sudo chage -l and passwd -S (which read "
    "/etc/shadow), counting shadow entries, listing /root, creating and deleting a "
    "temporary account, reading logs.",
    looks_like="credential access (/etc/shadow reads via sudo), account creation, discovery",
    run=run,
)
