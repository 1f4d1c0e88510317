"""Packages a test's ``get_prereq_command`` asks for, and the few the lab will install.

Tests fix a missing tool with ``apt-get install -y X`` (or ``yum``, ``pkg``, ``brew``, ``pip``
for other systems). The lab never runs those commands inside a test: it reads which Debian
packages they name, and when every one of them is in :data:`ALLOWED_DEBIAN` (and the run
allows installing), installs them once, with ``apt-get`` from Debian's own archive, before
the first test and outside any snapshot window. Everything else leaves the dependency
missing.

The allow-list holds small command-line tools that neither start a service nor change system
configuration when installed, so installing them cannot change what the agent sees except
by making the test's own tool present. Python packages are never installed: on Debian 12
``pip`` refuses the system interpreter (PEP 668), and a change there would outlive the run.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

ALLOWED_DEBIAN: dict[str, str] = {
    "busybox": "one static binary; no service, no configuration",
    "p7zip-full": "the 7z archiver",
    "ccrypt": "a file-encryption command",
    "whois": "a client; its queries are contained by the sandbox",
    "telnet": "a client (transitional package for inetutils-telnet)",
    "inetutils-telnet": "a client",
    "sshpass": "a password helper for the ssh client",
    "nmap": "a scanner command; it only reaches the sandbox's loopback",
    "lsof": "a read-only listing tool",
    "net-tools": "netstat, arp, ifconfig: listing tools",
    "sqlite3": "a database shell",
    "binutils": "strings, objdump: file tools",
    "curl": "a client",
    "gpg": "file encryption and signing",
    "zip": "an archiver",
    "unzip": "an archiver",
    "xxd": "a hex dump tool",
    "bind9-dnsutils": "dig, nslookup: clients",
    "tcpdump": "a capture command; the sandbox holds only loopback",
    "ldap-utils": "LDAP clients",
}
"""Debian packages the lab may install for a test, and why each is harmless to install."""

_APT = re.compile(r"\bapt(?:-get|itude)?\b([^;&|)\n]*?)\binstall\b([^;&|)\n]*)")
_OTHER = re.compile(
    r"\b(yum|dnf|zypper|pacman|apk|pkg|brew|snap|pip3?|pipx|npm|gem|go|cargo|easy_install)"
    r"\s+(?:-\S+\s+)*(?:install|add|get)\b"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageRequest:
    debian: tuple[str, ...] = ()
    """Debian packages named by ``apt``/``apt-get`` installs."""
    others: tuple[str, ...] = ()
    """Other package managers asked (``yum``, ``pip`` ...)."""

    @property
    def empty(self) -> bool:
        return not self.debian and not self.others

    def refused(self) -> tuple[str, ...]:
        """Debian packages not in the allow-list."""
        return tuple(name for name in self.debian if name not in ALLOWED_DEBIAN)


def requested_packages(text: str) -> PackageRequest:
    """The packages ``text`` would install (read, never run)."""
    debian: list[str] = []
    for match in _APT.finditer(text):
        for word in match.group(2).split():
            if not word.startswith(("-", "/", ".", "$", "#")) and "=" not in word:
                debian.append(word.strip("'\""))
    others = [match.group(1) for match in _OTHER.finditer(text)]
    return PackageRequest(debian=tuple(dict.fromkeys(debian)), others=tuple(dict.fromkeys(others)))


def missing(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that dpkg does not list as installed."""
    absent = []
    for name in names:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in done.stdout:
            absent.append(name)
    return absent


def install(names: Iterable[str], *, timeout_s: float = 600.0) -> subprocess.CompletedProcess[str]:
    """``apt-get install`` the allow-listed ``names`` (others are refused with ValueError)."""
    wanted = list(dict.fromkeys(names))
    refused = [name for name in wanted if name not in ALLOWED_DEBIAN]
    if refused:
        raise ValueError(f"not in the allow-list: {', '.join(refused)}")
    return subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *wanted],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
