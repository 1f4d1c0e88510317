"""Settings of response: the allow-list, the quarantine store, the audit trail, the
addresses that isolation keeps reachable and the baseline of persistence files."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from provarmor.model.errors import ConfigError
from provarmor.model.setting import Maturity, setting

_NAMESPACE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
PACKAGE_MANAGERS = (
    "apt",
    "apt-get",
    "aptitude",
    "dpkg",
    "unattended-upgrade",
    "rpm",
    "dnf",
    "yum",
    "zypper",
    "pacman",
    "apk",
    "packagekitd",
)
PERSISTENCE_FILES = (
    "~/.bashrc",
    "~/.bash_profile",
    "~/.bash_login",
    "~/.profile",
    "~/.bash_logout",
    "~/.zshrc",
    "~/.zprofile",
    "~/.ssh/authorized_keys",
    "/etc/profile",
    "/etc/profile.d/*.sh",
    "/etc/bash.bashrc",
    "/etc/environment",
    "/etc/crontab",
    "/etc/cron.d/*",
    "/var/spool/cron/crontabs/*",
    "/etc/ld.so.preload",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseSettings:
    state_dir: Path = setting(
        Path("/var/lib/provarmor/response"),
        "Owner-only folder of response: the quarantine store (`quarantine/`), the audit "
        "trail (`actions.jsonl`), the isolation state (`isolation.json`) and the baseline "
        "of persistence files (`baseline.json`).",
        maturity=Maturity.INCUBATING,
    )
    manager_addresses: tuple[str, ...] = setting(
        (),
        "The manager's addresses (IP or CIDR): never blocked, reachable while isolated.",
        maturity=Maturity.INCUBATING,
    )
    bus_addresses: tuple[str, ...] = setting(
        (),
        "The message bus's addresses (IP or CIDR): never blocked, reachable while isolated.",
        maturity=Maturity.INCUBATING,
    )
    allow_networks: tuple[str, ...] = setting(
        (),
        "More networks (CIDR) that are never blocked and stay reachable while isolated.",
        maturity=Maturity.INCUBATING,
    )
    protected_executables: tuple[str, ...] = setting(
        PACKAGE_MANAGERS,
        "Program names (basename) never killed or suspended, nor any process below one "
        "(a transaction's maintainer scripts), unless a person names the process explicitly "
        "(the package manager: a half-done install breaks a host).",
        maturity=Maturity.INCUBATING,
    )
    protected_users: tuple[str, ...] = setting(
        ("root",), "Accounts never locked.", maturity=Maturity.INCUBATING
    )
    process_scope: str = setting(
        "",
        "A cgroup v2 path prefix (e.g. `/provarmor-lab-`): when set, response acts only on "
        "processes whose cgroup starts with it, and leaves an incident alone while one of "
        "its signalling processes runs outside it or until one of its processes is seen "
        "alive inside it ('': the whole host). `lab run --response` "
        "sets it to the lab's jails, so a lab run on a shared machine touches no other work.",
        maturity=Maturity.EXPERIMENTAL,
    )
    nft_command: tuple[str, ...] = setting(
        ("nft",),
        "The nftables command.",
        maturity=Maturity.EXPERIMENTAL,
    )
    network_namespace: str = setting(
        "",
        "The named network namespace (`ip netns` name, as under /run/netns) whose firewall "
        "`block` and `isolate` change ('': the agent's own, the host's). For a host whose "
        "workload runs in a namespace of its own (a container host, the lab's victim): the "
        "host's own ruleset is then never touched.",
        maturity=Maturity.EXPERIMENTAL,
    )

    persistence_files: tuple[str, ...] = setting(
        PERSISTENCE_FILES,
        "Persistence files whose content the agent keeps a baseline of, so `revert_file` "
        "can take back the lines an attack added: absolute paths, `*` matching within one "
        "path segment; `~/` is the home folder of root and of every real user (uid 1000 and "
        "above, nobody excepted).",
        maturity=Maturity.EXPERIMENTAL,
    )
    baseline_refresh_seconds: float = setting(
        900.0,
        "How often the agent with a response policy reads the persistence files again "
        "(0: at start only). A change becomes a new version of the file's baseline; "
        "`revert_file` goes back to the newest version older than the attack's write.",
        maturity=Maturity.EXPERIMENTAL,
    )
    baseline_versions: int = setting(
        3,
        "Versions of one persistence file the baseline keeps (the oldest go first).",
        maturity=Maturity.EXPERIMENTAL,
    )
    baseline_file_bytes: int = setting(
        256 * 1024,
        "The largest persistence file whose content the baseline keeps (a larger one is "
        "recorded as not kept and counted: it cannot be reverted).",
        maturity=Maturity.EXPERIMENTAL,
    )
    baseline_total_bytes: int = setting(
        8 * 1024 * 1024,
        "The most content the baseline keeps in all (past it, a file's new version is "
        "recorded as not kept and counted).",
        maturity=Maturity.EXPERIMENTAL,
    )

    def __post_init__(self) -> None:
        name = self.network_namespace
        if name and (name in (".", "..") or not _NAMESPACE_NAME.fullmatch(name)):
            raise ConfigError(
                f"not a network namespace name: {name!r} (letters, digits, '.', '_', '-')",
                location="response.network_namespace",
            )
        for key in ("manager_addresses", "bus_addresses", "allow_networks"):
            for network in getattr(self, key):
                try:
                    ipaddress.ip_network(network, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"not an IP address or network: {network!r}", location=f"response.{key}"
                    ) from None
        if self.baseline_versions < 1:
            raise ConfigError(
                f"at least 1, not {self.baseline_versions}", location="response.baseline_versions"
            )
        for pattern in self.persistence_files:
            if not pattern.startswith(("/", "~/")) or "/../" in f"{pattern}/":
                raise ConfigError(
                    f"not an absolute path or ~/path: {pattern!r}",
                    location="response.persistence_files",
                )

    @property
    def firewall_command(self) -> tuple[str, ...]:
        """The nftables command acting on the firewall response manages."""
        if self.network_namespace:
            return ("ip", "netns", "exec", self.network_namespace, *self.nft_command)
        return self.nft_command

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / "quarantine"

    @property
    def baseline_file(self) -> Path:
        return self.state_dir / "baseline.json"

    @property
    def audit_file(self) -> Path:
        return self.state_dir / "actions.jsonl"

    @property
    def isolation_file(self) -> Path:
        return self.state_dir / "isolation.json"

    def reachable_networks(self) -> tuple[str, ...]:
        """What is never blocked and stays reachable while isolated."""
        return self.manager_addresses + self.bus_addresses + self.allow_networks
