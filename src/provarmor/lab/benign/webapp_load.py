"""Benign: client load on the web application: notes read and written (SQLite), and the
ping form used as intended."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload


def run(env: LabEnvironment, rng: random.Random) -> None:
    url = env.ctx.web.url
    requests = []
    for _ in range(rng.randrange(5, 15)):
        kind = rng.random()
        if kind < 0.5:
            requests.append(f"curl -s -o /dev/null {url}/notes")
        elif kind < 0.8:
            text = rng.choice(("deploy done", "rotate keys", "check disk", "call vendor"))
            requests.append(f"curl -s -o /dev/null --data-urlencode 'text={text}' {url}/notes")
        else:
            host = rng.choice(("127.0.0.1", "localhost", "127.0.0.53"))
            requests.append(f"curl -s -o /dev/null --data-urlencode 'host={host}' {url}/ping")
    env.run(" ; ".join(requests), user=env.ctx.ops_user, timeout=60, check=True)


WORKLOAD = Workload(
    name="webapp-load",
    title="Client load on the web application",
    description="Bursts of 5-15 curl requests: listing and adding notes (SQLite writes) and "
    "using the ping form with local hosts, so the application starts ping through sh "
    "exactly as it does for an attack.",
    looks_like="the web application spawning shells (the exploit's entry point)",
    run=run,
)
