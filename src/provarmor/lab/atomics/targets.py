"""Which files a command writes or deletes, read from its words (``cp a b`` writes ``b``).

One small rule per command family, for the commands Atomic Red Team tests use: deleters
(``rm``, ``shred``, ``unlink``), movers and copiers (last argument; ``mv`` also deletes its
sources), attribute changers (``chmod MODE files``), ``tee``, ``dd of=``, ``sed -i``,
``truncate``, ``touch``, ``mkdir``, downloaders' ``-o`` files, compilers' ``-o``, archivers,
and editors (whose swap file lands next to the file). Redirections are handled by
:mod:`provarmor.lab.atomics.shellwords`. Everything here is pure.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DELETERS = frozenset({"rm", "unlink", "rmdir", "shred", "srm", "wipe"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Targets:
    writes: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()


def positionals(args: Sequence[str], *, valued: frozenset[str] = frozenset()) -> list[str]:
    """The arguments that are not options; options in ``valued`` take the next word."""
    found: list[str] = []
    skip = False
    options_done = False
    for arg in args:
        if skip:
            skip = False
            continue
        if options_done or not arg.startswith("-") or arg == "-":
            found.append(arg)
        elif arg == "--":
            options_done = True
        elif arg in valued:
            skip = True
    return found


def option_values(args: Sequence[str], names: Sequence[str]) -> list[str]:
    """Values of the options ``names`` (``-o X``, ``-oX``, ``--output X``, ``--output=X``)."""
    found: list[str] = []
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                found.append(args[index + 1])
            elif name.startswith("--") and arg.startswith(name + "="):
                found.append(arg[len(name) + 1 :])
            elif len(name) == 2 and arg.startswith(name) and len(arg) > 2 and name != "--":
                found.append(arg[2:])
    return found


def _deleter(args: Sequence[str]) -> Targets:
    return Targets(deletes=tuple(positionals(args)))


def _mover(args: Sequence[str]) -> Targets:
    named = option_values(args, ("-t", "--target-directory"))
    rest = positionals(args, valued=frozenset({"-t", "-S", "--suffix"}))
    if named:
        return Targets(writes=tuple(named), deletes=tuple(rest))
    return Targets(writes=tuple(rest[-1:]), deletes=tuple(rest[:-1]))


def _copier(args: Sequence[str]) -> Targets:
    named = option_values(args, ("-t", "--target-directory"))
    words = positionals(args, valued=frozenset({"-t", "-S", "--suffix"}))
    if named:
        return Targets(writes=tuple(named))
    if len(words) == 1:  # ``ln -s x``: the link is made in the current directory
        return Targets(writes=(posixpath.basename(words[0]),))
    return Targets(writes=tuple(words[-1:]))


def _plain_option(arg: str) -> bool:
    """An option of chmod/chown/chattr that is not itself a mode (``-R``, ``--verbose``)."""
    return arg.startswith("--") or (len(arg) == 2 and arg[0] == "-" and arg[1] in "RvfchHLPV")


def _attributes(args: Sequence[str]) -> Targets:
    """``chmod MODE files``: the first operand is the mode (``-w`` and ``-i`` included)."""
    if any(arg.startswith("--reference") for arg in args):
        return Targets(writes=tuple(positionals(args)))
    operands = [arg for arg in args if not _plain_option(arg)]
    return Targets(writes=tuple(operands[1:]))


def _all_positionals(valued: frozenset[str]) -> Callable[[Sequence[str]], Targets]:
    def rule(args: Sequence[str]) -> Targets:
        return Targets(writes=tuple(positionals(args, valued=valued)))

    return rule


def _options(*names: str) -> Callable[[Sequence[str]], Targets]:
    def rule(args: Sequence[str]) -> Targets:
        return Targets(writes=tuple(option_values(args, names)))

    return rule


def _dd(args: Sequence[str]) -> Targets:
    return Targets(writes=tuple(arg[3:] for arg in args if arg.startswith("of=")))


def _sed(args: Sequence[str]) -> Targets:
    if not any(arg.startswith(("-i", "--in-place")) for arg in args):
        return Targets()
    words = positionals(args, valued=frozenset({"-e", "-f", "--expression", "--file"}))
    scripted = any(arg in ("-e", "-f", "--expression", "--file") for arg in args)
    return Targets(writes=tuple(words if scripted else words[1:]))


def _make(args: Sequence[str]) -> Targets:
    built = [
        word for word in positionals(args, valued=frozenset({"-C", "-f", "-j"})) if "/" in word
    ]
    return Targets(writes=tuple(option_values(args, ("-C",)) + built))


def _tar(args: Sequence[str]) -> Targets:
    writes = option_values(args, ("-C", "--directory"))
    clusters = [
        arg[1:] if arg.startswith("-") else arg
        for index, arg in enumerate(args)
        if (arg.startswith("-") and not arg.startswith("--")) or index == 0
    ]
    if not ("--create" in args or any(set(cluster) & set("cru") for cluster in clusters)):
        return Targets(writes=tuple(writes))
    writes += option_values(args, ("--file",))
    for index, arg in enumerate(args[:-1]):
        cluster = arg[1:] if arg.startswith("-") else (arg if index == 0 else "")
        if not arg.startswith("--") and "f" in cluster:
            writes.append(args[index + 1])
            break
    return Targets(writes=tuple(word for word in writes if word != "-"))


def _first_positional(valued: frozenset[str] = frozenset()) -> Callable[[Sequence[str]], Targets]:
    def rule(args: Sequence[str]) -> Targets:
        return Targets(writes=tuple(positionals(args, valued=valued)[:1]))

    return rule


def _seven_zip(args: Sequence[str]) -> Targets:
    words = positionals(args)
    if words[:1] == ["a"] and len(words) > 1:
        return Targets(writes=(words[1],))
    return Targets(writes=tuple(arg[2:] for arg in args if arg.startswith("-o")))


def _editor(args: Sequence[str]) -> Targets:
    swaps = []
    for word in positionals(args, valued=frozenset({"-c", "--cmd", "-u", "--eval", "-l"})):
        directory, name = posixpath.split(word)
        swaps += [word, posixpath.join(directory, f".{name}.swp")]
    return Targets(writes=tuple(swaps))


def _venv(args: Sequence[str]) -> Targets:
    words = positionals(args, valued=frozenset({"-m", "-c", "-W", "-X"}))
    if "-m" in args and option_values(args, ("-m",))[:1] == ["venv"]:
        return Targets(writes=tuple(words))
    return Targets()


def _touch(args: Sequence[str]) -> Targets:
    valued = frozenset({"-t", "-d", "-r", "--date", "--reference"})
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif (
            arg.startswith("-") and not arg.startswith("--") and arg[-1] in "tdr"
        ) or arg in valued:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return Targets(writes=tuple(words))


_RULES: dict[str, Callable[[Sequence[str]], Targets]] = {
    **dict.fromkeys(DELETERS, _deleter),
    "mv": _mover,
    **dict.fromkeys(("cp", "install", "ln", "rsync", "scp"), _copier),
    **dict.fromkeys(
        ("chmod", "chown", "chgrp", "chattr", "chflags", "setfacl", "setcap"), _attributes
    ),
    "tee": _all_positionals(frozenset()),
    "touch": _touch,
    "mkdir": _all_positionals(frozenset({"-m", "--mode"})),
    "mkfifo": _all_positionals(frozenset({"-m", "--mode"})),
    "truncate": _all_positionals(frozenset({"-s", "-r", "--size", "--reference"})),
    "dd": _dd,
    "sed": _sed,
    "curl": _options("-o", "--output"),
    "wget": _options("-O", "--output-document", "-P", "--directory-prefix"),
    **dict.fromkeys(("gcc", "cc", "g++", "c++", "clang", "clang++", "ld"), _options("-o")),
    "make": _make,
    "openssl": _options("-out", "-keyout"),
    "gpg": _options("-o", "--output"),
    "ssh-keygen": _options("-f"),
    "tar": _tar,
    "unzip": _options("-d"),
    "zip": _first_positional(frozenset({"-P", "--password"})),
    "7z": _seven_zip,
    **dict.fromkeys(
        ("gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "ccencrypt", "ccdecrypt"),
        _all_positionals(frozenset({"-S", "-K", "--suffix", "--key"})),
    ),
    **dict.fromkeys(("vim", "vi", "nvim", "nano", "pico", "emacs", "ee", "joe"), _editor),
    **dict.fromkeys(("python", "python3", "python2"), _venv),
}


def targets_of(name: str, args: Sequence[str]) -> Targets:
    """What the command ``name args`` writes and deletes (as written, not expanded)."""
    rule = _RULES.get(posixpath.basename(name))
    return rule(args) if rule is not None else Targets()
