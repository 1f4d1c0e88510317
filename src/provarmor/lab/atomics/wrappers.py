"""Commands that run other commands: wrappers (``sudo``, ``env``, ``timeout`` ...) and the
command strings of ``sh -c``, ``su -c``, ``eval``, ``trap`` and ``watch``.

The safety screen and the network reader look through these to the command that really
runs. Pure.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "csh", "tcsh", "fish"})
_SUDO_VALUED = frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U"})
_SIMPLE_WRAPPERS = frozenset({"nohup", "exec", "builtin", "setsid", "doas", "stdbuf", "time"})


def unwrap(words: Sequence[str]) -> list[str]:
    """``words`` without the wrappers that only run the rest (``sudo -u x``, ``nohup``,
    ``timeout 5``, ``env A=b``, ``nice -n 5``, ``sshpass -p pw``, ``busybox``)."""
    rest = list(words)
    while rest:
        name = posixpath.basename(rest[0])
        if name in _SIMPLE_WRAPPERS:
            rest = positionals_after(rest[1:], valued=frozenset({"-a", "-i", "-o", "-e"}))
        elif name == "sudo":
            rest = positionals_after(rest[1:], valued=_SUDO_VALUED)
        elif name == "env":
            rest = positionals_after(rest[1:], valued=frozenset({"-u", "-C", "-S"}))
            while rest and "=" in rest[0] and not rest[0].startswith("="):
                rest = rest[1:]
        elif name in ("timeout", "nice", "ionice", "sshpass"):
            valued = frozenset({"-s", "-k", "-n", "-c", "-p", "-f", "-d", "--signal"})
            rest = positionals_after(rest[1:], valued=valued)
            if name == "timeout" and rest:
                rest = rest[1:]  # the duration
        elif name == "busybox" and len(rest) > 1:
            rest = rest[1:]
        else:
            break
    return rest


def positionals_after(args: Sequence[str], *, valued: frozenset[str]) -> list[str]:
    """``args`` from the first word that is not an option (or an option's value) on."""
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "-":
        if args[index] == "--":
            return list(args[index + 1 :])
        index += 2 if args[index] in valued else 1
    return list(args[index:])


def nested_script(name: str, args: Sequence[str]) -> str | None:
    """The command string ``sh -c``, ``su -c``, ``eval`` or ``trap`` would run."""
    if name in SHELLS or name in ("su", "runuser"):
        for index, arg in enumerate(args[:-1]):
            if arg in ("-c", "--command") or (
                name in SHELLS and arg.startswith("-") and not arg.startswith("--") and "c" in arg
            ):
                return args[index + 1]
        for arg in args:
            if arg.startswith("--command="):
                return arg.split("=", 1)[1]
        return None
    if name == "eval":
        return " ".join(args)
    if name == "trap" and args:
        return args[0]
    if name == "watch":
        return " ".join(positionals_after(args, valued=frozenset({"-n", "-d"})))
    return None
