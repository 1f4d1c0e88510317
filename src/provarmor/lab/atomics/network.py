"""Where a command would send traffic, when that is anywhere but loopback.

After the download URLs of a test have been pointed at the lab's local server
(:mod:`provarmor.lab.atomics.downloads`), whatever destination is left makes the test one
that "needs internet" and it is skipped. The screen reads: URLs and numeric addresses (with
:class:`~provarmor.lab.containment.Containment`, which reads them as ``inet_aton`` does);
host names with a well-known top-level domain (``www.google.com``, ``target.example.com``);
the host of ``ssh``/``scp``/``rsync``/``sftp`` (``user@host``, ``host:path``); the first
argument of ``ping``, ``telnet``, ``nc``, ``nmap`` ...; and name look-ups (``dig``,
``nslookup``, ``host``, ``whois``), which go to the resolver unless sent to loopback.

This is a reading aid, not the guarantee: tests run in a network namespace that holds only a
loopback interface (:mod:`provarmor.lab.atomics.sandbox`), so a destination this misses
still cannot be reached. Everything here is pure.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence

from provarmor.lab.atomics.shellwords import ShellSyntaxError, SimpleCommand, split_commands
from provarmor.lab.atomics.targets import positionals
from provarmor.lab.atomics.wrappers import nested_script, unwrap
from provarmor.lab.containment import Containment

_TLDS = (
    "com|net|org|edu|gov|mil|info|biz|io|co|me|us|uk|de|fr|ru|cn|jp|br|au|ca|nl|eu|"
    "xyz|app|dev|cloud|online|site|tech|ai|gg|tv|rs|ms|test|example|invalid|"
    "local|lan|corp|internal|onion"
)
_HOST_NAME = re.compile(
    rf"(?<![\w/\\-])((?:[A-Za-z0-9-]+\.)+(?:{_TLDS}))(?![\w-])(?!\.\w)", re.IGNORECASE
)
_HOST_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_SECURE_COPY = frozenset({"ssh", "scp", "sftp", "rsync", "slogin"})
_LOOKUPS = frozenset({"dig", "nslookup", "host", "whois", "drill", "kdig"})
_FIRST_HOST: dict[str, frozenset[str]] = {
    "ping": frozenset(
        ["-c", "-i", "-W", "-w", "-s", "-t", "-I", "-l", "-p", "-Q", "-M", "-m", "-S"]
    ),
    "ping6": frozenset(["-c", "-i", "-W", "-w", "-s", "-t", "-I", "-l", "-p"]),
    "telnet": frozenset(["-l", "-n", "-b", "-e"]),
    "nc": frozenset(["-p", "-w", "-s", "-i", "-q", "-X", "-x", "-e", "-c", "-O", "-I", "-T", "-V"]),
    "ncat": frozenset(["-p", "-w", "-s", "-i", "-e", "-c", "--sh-exec", "--exec"]),
    "netcat": frozenset(["-p", "-w", "-s", "-i", "-q", "-e", "-c"]),
    "traceroute": frozenset(["-m", "-q", "-w", "-p", "-f", "-i", "-s"]),
    "ftp": frozenset(),
    "tftp": frozenset(),
    "ssh": frozenset(
        [
            "-b",
            "-c",
            "-D",
            "-E",
            "-e",
            "-F",
            "-I",
            "-i",
            "-J",
            "-L",
            "-l",
            "-m",
            "-O",
            "-o",
            "-p",
            "-Q",
            "-R",
            "-S",
            "-W",
            "-w",
            "-B",
        ]
    ),
}
_ALL_HOSTS: dict[str, frozenset[str]] = {
    "nmap": frozenset(["-p", "-oN", "-oX", "-oG", "-oA", "-iL", "-e", "-S", "-g", "--top-ports"]),
}
_LOOPBACK_SERVER = re.compile(r"^@(127\.[0-9.]+|localhost|::1)$")


def _host_of(word: str) -> str:
    """``user@host:path`` -> ``host`` ('' when ``word`` names no remote host)."""
    if "@" in word:
        return word.split("@", 1)[1].split(":", 1)[0]
    head, colon, _ = word.partition(":")
    if colon and "/" not in head and _HOST_WORD.match(head) and not head.isdigit():
        return head
    return ""


def _looks_like_host(word: str) -> bool:
    return bool(_HOST_WORD.match(word)) and any(char.isalpha() for char in word)


def _command_destinations(words: Sequence[str]) -> list[str]:
    if not words:
        return []
    name, args = posixpath.basename(words[0]), list(words[1:])
    found: list[str] = []
    if name in _SECURE_COPY:
        found += [host for host in (_host_of(word) for word in positionals(args)) if host]
    if name in _FIRST_HOST:
        hosts = positionals(args, valued=_FIRST_HOST[name])
        if hosts and _looks_like_host(hosts[0].split("@")[-1]):
            found.append(hosts[0].split("@")[-1])
    if name in _ALL_HOSTS:
        found += [
            word for word in positionals(args, valued=_ALL_HOSTS[name]) if _looks_like_host(word)
        ]
    if name in _LOOKUPS and not _looked_up_locally(name, args):
        found.append(f"the DNS resolver ({name} {' '.join(positionals(args))[:60]})")
    return found


def _looked_up_locally(name: str, args: Sequence[str]) -> bool:
    if name == "whois":
        servers = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "-h"]
        return bool(servers) and all(Containment().is_allowed_host(host) for host in servers)
    return any(_LOOPBACK_SERVER.match(arg) for arg in args)


def _nested(command: SimpleCommand) -> Iterable[str]:
    """Command strings run by ``sh -c``, ``su -c`` and the like."""
    words = unwrap(command.words)
    script = nested_script(posixpath.basename(words[0]), words[1:]) if words else None
    if script is not None:
        yield script


def _commands(text: str) -> list[SimpleCommand]:
    try:
        commands = split_commands(text)
    except ShellSyntaxError:
        return []
    for command in list(commands):
        for inner in _nested(command):
            commands.extend(_commands(inner))
    return commands


def destinations(
    text: str, *, containment: Containment | None = None, shell: bool = True
) -> list[str]:
    """Every destination in ``text`` that is neither loopback nor allowed by ``containment``
    (default: loopback only), in order, without repeats. Text that is not shell (a data
    file, C or Python source) is read for URLs and addresses only."""
    guard = containment or Containment()
    found = list(guard.violations(text))
    if not shell:
        return list(dict.fromkeys(found))
    found += [
        match.group(1)
        for match in _HOST_NAME.finditer(text)
        if not guard.is_allowed_host(match.group(1))
    ]
    for command in _commands(text):
        found += [
            host
            for host in _command_destinations(unwrap(command.words))
            if host.startswith("the DNS") or not guard.is_allowed_host(host)
        ]
    return list(dict.fromkeys(found))
