"""Benign: the administrator, logged in over ssh with a terminal, downloads a tool with
curl, checks it, unpacks it, makes it executable, runs it, and installs it with sudo (then
removes it again)."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload


def run(env: LabEnvironment, rng: random.Random) -> None:
    tools = [path for path in env.mirror_paths if path.startswith("tools/")]
    if not tools:
        return
    archive = rng.choice(tools)
    name = archive.split("/")[1].rsplit("-", 1)[0]
    folder = f"~/downloads/{rng.randrange(100, 999)}"
    command = (
        f"mkdir -p {folder} && cd {folder} && curl -fsSLO {env.ctx.mirror_url}/{archive} && "
        f"sha256sum *.tar.gz && tar xzf *.tar.gz && chmod +x {name}/{name} && ./{name}/{name} && "
        f"sudo -n install -m 755 {name}/{name} /usr/local/bin/{name} && {name} && "
        f"sudo -n rm -f /usr/local/bin/{name}"
    )
    env.type_command(env.ctx.ops_user, command, timeout=60, check=True)


WORKLOAD = Workload(
    name="admin-downloads",
    title="Download and install a tool",
    description="The administrator, at a terminal of an ssh login, fetches a tool tarball from the "
    "local mirror with curl, checks its sha256, unpacks it, chmods and runs it, installs "
    "it into /usr/local/bin with sudo, runs it from there and removes it.",
    looks_like="ingress tool transfer: curl, chmod +x, execute, sudo install",
    run=run,
)
