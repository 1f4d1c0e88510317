"""Everything a scenario or workload needs to know about the lab, drawn from the run's seed.

A :class:`LabContext` is pure data: user names, ports, addresses, directories and URL paths,
all chosen by :class:`~provarmor.lab.naming.Names` from the seed. Building one changes
nothing on the machine; :mod:`provarmor.lab.environment` makes it real. Plans and docs can
therefore be built and compared for any seed without root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provarmor.lab.naming import Names
from provarmor.lab.netns import LabNetwork

ROLES = ("host2", "c2", "sink", "dns", "admin", "mirror")
"""Lab namespaces: the attacker's lateral target, the C2 server, the exfiltration sink, the
DNS-like sink, the host benign administration reaches, and the benign download mirror."""

RUN_ROOT = Path("/var/lib/provarmor/lab")
PYTHON = "/usr/bin/python3"
"""The system interpreter, the one every lab user can run (payloads are run with it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSite:
    """The vulnerable web application."""

    port: int
    user: str
    directory: str
    log: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class C2Site:
    """The attacker's server: payloads over HTTP, implant tasking, a reverse-shell port."""

    address: str
    http_port: int
    shell_port: int
    beacon_path: str
    result_path: str
    agent: str

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.http_port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LabContext:
    seed: int
    run_id: str
    names: Names
    network: LabNetwork
    web: WebSite
    c2: C2Site
    ops_user: str
    """An administrator: bash, sudo, an SSH key that logs in to the lab hosts."""
    dev_user: str
    """A developer: builds, tests, git."""
    sink_http_port: int
    sink_tcp_port: int
    dns_port: int
    mirror_port: int
    host2_name: str
    run_dir: Path
    """Root-only directory of the lab's own state (servers' files, logs); never a target."""
    scratch: str
    """Where benign workloads keep what is not in a lab user's home (jobs, backups)."""

    @classmethod
    def from_seed(cls, seed: int) -> LabContext:
        names = Names(seed)
        run_id = f"{seed}-{names.token(8)}"
        network = LabNetwork(roles=ROLES, names=names)
        web_user = names.user("www")
        web = WebSite(
            port=names.port(8000, 9999),
            user=web_user,
            directory=f"/srv/{names.word()}",
            log=f"/var/log/{names.word()}/access.log",
        )
        c2 = C2Site(
            address=network.address("c2"),
            http_port=int(names.pick(("80", "443", "8080", "8443", "8000"))),
            shell_port=names.port(1024, 65000),
            beacon_path=f"/{names.pick(('api', 'static', 'cdn', 'assets'))}/{names.token(5)}",
            result_path=f"/{names.pick(('upload', 'submit', 'v1', 'data'))}/{names.token(5)}",
            agent=names.token(8),
        )
        return cls(
            seed=seed,
            run_id=run_id,
            names=names,
            network=network,
            web=web,
            c2=c2,
            ops_user=names.user("ops"),
            dev_user=names.user("dev"),
            sink_http_port=int(names.pick(("80", "8080", "8888", "9000"))),
            sink_tcp_port=names.port(1024, 65000),
            dns_port=53,
            mirror_port=80,
            host2_name=f"{names.pick(('db', 'files', 'build', 'web', 'app'))}-{names.token(3)}",
            run_dir=RUN_ROOT / f"run-{run_id}",
            scratch=f"/var/opt/{names.word()}",
        )

    def address(self, role: str) -> str:
        return self.network.address(role)

    @property
    def sink_url(self) -> str:
        return f"http://{self.address('sink')}:{self.sink_http_port}"

    @property
    def mirror_url(self) -> str:
        return f"http://{self.address('mirror')}:{self.mirror_port}"

    def home(self, user: str) -> str:
        return f"/home/{user}"

    def payload_url(self, path: str) -> str:
        return f"{self.c2.url}/{path.lstrip('/')}"
