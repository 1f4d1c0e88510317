"""What a test's own commands create or leave unset, which the safety screen must know.

A test may change and delete the users it creates itself (``useradd art`` in the command,
``userdel art`` in the cleanup), and a variable a phase reads but never sets expands to
nothing in the sandbox's fresh shell (``rm $TMPFILE`` in a cleanup deletes nothing). Pure.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from provarmor.lab.atomics.shellwords import ShellSyntaxError, split_commands
from provarmor.lab.atomics.targets import positionals
from provarmor.lab.atomics.wrappers import nested_script, unwrap


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


CREATORS = frozenset({"useradd", "adduser"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Identities:
    """Users and groups a test creates itself (it may change and delete those)."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


_ENVIRONMENT = frozenset(
    _names(
        "HOME USER LOGNAME SHELL PATH LANG PWD OLDPWD HOSTNAME HOSTTYPE OSTYPE MACHTYPE "
        "UID EUID PPID BASH BASHPID BASH_VERSION RANDOM SECONDS LINENO IFS TERM SHLVL PS1 "
        "PS2 PS4 OPTIND OPTARG SUDO_USER SUDO_UID SUDO_GID SUDO_COMMAND MAIL TMPDIR "
        "PathToAtomicsFolder"
    )
)
"""Variables a test's shell may find set (the sandbox's environment and the shell's own)."""
_ASSIGNED = (
    re.compile(r"(?<![\w$])([A-Za-z_]\w*)(?:\[[^\]]*\])?\+?="),
    re.compile(r"\bgetopts\s+\S+\s+([A-Za-z_]\w*)"),
    re.compile(r"\b(?:for|select)\s+([A-Za-z_]\w*)\s+in\b"),
)
_READ = re.compile(r"\bread\b(?:\s+-\w+)*((?:\s+[A-Za-z_]\w*)+)")


def unset_variables(text: str) -> frozenset[str]:
    """Variables ``text`` reads but never sets (and the environment does not): in the
    sandbox's fresh shell they expand to nothing."""
    referenced = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
    assigned = {name for pattern in _ASSIGNED for name in pattern.findall(text)}
    assigned |= {name for names in _READ.findall(text) for name in names.split()}
    return frozenset(referenced - assigned - _ENVIRONMENT)


def _created_by(words: Sequence[str]) -> tuple[str, str]:
    """(``user``|``group``, name) when ``words`` create one, else ('', '')."""
    words = unwrap(words)
    if not words:
        return "", ""
    name, args = posixpath.basename(words[0]), list(words[1:])
    if name == "pw" and args[:1] in (["useradd"], ["adduser"], ["groupadd"]):
        kind = "group" if args[0] == "groupadd" else "user"
        found = positionals(args[1:], valued=frozenset({"-n"}))
        return (kind, found[0]) if found else ("", "")
    valued = frozenset(
        _names(
            "-b -c -d -e -f -g -G -k -K -p -s -u -Z --home-dir --home --base-dir --uid "
            "--shell --gid --groups --password --comment --expiredate --inactive --skel"
        )
    )
    found = positionals(args, valued=valued)
    if name in CREATORS and found:
        return "user", found[-1]
    if name in ("groupadd", "addgroup") and found:
        return "group", found[-1]
    return "", ""


def created_identities(texts: Sequence[str]) -> Identities:
    """Users and groups the commands in ``texts`` create (``useradd``, ``pw useradd`` ...),
    also inside ``sh -c`` and ``su -c`` strings."""
    users: set[str] = set()
    groups: set[str] = set()
    pending = list(texts)
    while pending:
        try:
            commands = split_commands(pending.pop())
        except ShellSyntaxError:
            continue
        for command in commands:
            kind, name = _created_by(command.words)
            (users if kind == "user" else groups if kind == "group" else set()).add(name)
            words = unwrap(command.words)
            nested = nested_script(posixpath.basename(words[0]), words[1:]) if words else None
            if nested is not None:
                pending.append(nested)
    return Identities(users=frozenset(users), groups=frozenset(groups))
