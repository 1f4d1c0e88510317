"""Benign: the administrator, logged in over ssh with a terminal, installs a Python package
from the local mirror's cache with sudo, plus package queries."""

from __future__ import annotations

import random
import sys

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload


def run(env: LabEnvironment, rng: random.Random) -> None:
    wheels = [path for path in env.mirror_paths if path.endswith(".whl")]
    if not wheels:
        return
    wheel = rng.choice(wheels)
    package = wheel.split("/")[1]
    cache = f"{env.ctx.scratch}/wheelhouse"
    target = f"{env.ctx.scratch}/site-{rng.randrange(100, 999)}"
    command = (
        f"sudo -n mkdir -p {cache} && sudo -n curl -fsS -o {cache}/{wheel.rsplit('/', 1)[1]} "
        f"{env.ctx.mirror_url}/{wheel} && "
        f"sudo -n {sys.executable} -m pip install -q --disable-pip-version-check --no-index "
        f"--find-links {cache} --target {target} {package} && ls {target} && "
        f"dpkg -l | grep -c '^ii' && apt-cache policy curl | head -n 3; sudo -n rm -rf {target}"
    )
    env.type_command(env.ctx.ops_user, command, timeout=90, check=True)


WORKLOAD = Workload(
    name="package-install",
    title="Package install from a local cache",
    description="The administrator, at a terminal of an ssh login, downloads with sudo a wheel "
    "from the local package mirror into a wheelhouse, installs it with pip --no-index, lists "
    "installed Debian packages and queries apt's cache.",
    looks_like="downloads followed by code installation",
    run=run,
)
