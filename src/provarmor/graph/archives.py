"""Where an archiving or copying program writes, read from its command line.

``archive_written(executable, args)`` names the local file (or, for rsync, the local
destination) a backup-style run of tar, bsdtar, cpio, zip, 7z or rsync creates, and returns
``""`` when the run does not create one: extraction and listing, an archive written to
standard output (``tar czf - ...``, ``7z a -so``: what a pipe into ``nc`` or ``curl`` reads)
or to a device (``/dev/null``), a run told to execute a command of its caller's choosing
(tar's ``--checkpoint-action``, ``--to-command``, ``-I``, ``-F``; zip's ``-TT``: the shell
escapes GTFOBins lists),
a remote destination (``host:path``, ``rsync://``), rsync's server end (run by sshd for a
transfer another host drives), or an argument list it cannot read.
Pure; no file is looked at.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence

_TAR_CREATE = frozenset("cru")
"""tar's modes that write an archive: create, append, update."""
_TAR_VALUED = frozenset("bfgCFHKLNTVX")
"""tar's short options that take a value (``f`` the archive)."""
_TAR_LONG_CREATE = frozenset({"--create", "--append", "--update"})
_TAR_RUNS = frozenset(
    {
        "--checkpoint-action", "--to-command", "--use-compress-program", "--rsh-command",
        "--info-script", "--new-volume-script",
    }
)  # fmt: skip
"""tar's long options that run a command of the caller's choosing (GTFOBins' shell escapes)."""
_TAR_RUNS_SHORT = frozenset("IF")
"""``-I PROG`` (compress program) and ``-F SCRIPT`` (end-of-volume script)."""
_ZIP_RUNS = frozenset({"-TT", "--unzip-command"})
"""zip's test command (``-T -TT 'sh #'``): a shell, not a test."""
_ZIP_VALUED = frozenset({"-b", "-n", "-t", "-tt", "-P", "-x", "-i"})
_CPIO_FILE = frozenset({"-O", "-F"})
_RSYNC_VALUED = frozenset({"-e", "-f", "-B", "-T", "-M"})


def _remote(path: str) -> bool:
    """``host:path`` or a URL: somewhere else than this host's disk."""
    if "://" in path:
        return True
    head = path.split("/", 1)[0]
    return ":" in head


def _local_archive(path: str | None, *, force_local: bool = False) -> str:
    if not path or path == "-" or path.startswith("/dev/"):  # /dev/null: nothing is kept
        return ""
    return path if force_local or not _remote(path) else ""


def _tar_runs_a_command(args: Sequence[str]) -> bool:
    for word in args:
        if word.startswith("--"):
            if word.split("=", 1)[0] in _TAR_RUNS:
                return True
        elif word.startswith("-") and _TAR_RUNS_SHORT & set(word[1:]):
            return True
    return False


def _tar(args: Sequence[str]) -> str:
    """``tar czf FILE``, ``tar -czf FILE``, ``tar -c -f FILE``, ``tar --create --file=FILE``."""
    if _tar_runs_a_command(args):
        return ""
    create = False
    archive: str | None = None
    rest = list(args)
    if rest and rest[0] and not rest[0].startswith("-"):  # old style: ``tar czf FILE ...``
        letters, rest = rest[0], rest[1:]
        create = any(letter in _TAR_CREATE for letter in letters)
        valued = [letter for letter in letters if letter in _TAR_VALUED]
        if "f" in valued and valued.index("f") < len(rest):
            archive = rest[valued.index("f")]
        rest = rest[len(valued) :]
    force_local = False
    words = iter(rest)
    for word in words:
        if word == "--":
            break
        if word.startswith("--"):
            name, _, value = word.partition("=")
            create = create or name in _TAR_LONG_CREATE
            force_local = force_local or name == "--force-local"
            if name == "--file":
                archive = value if value else next(words, None)
            continue
        if not word.startswith("-") or word == "-":
            continue
        cluster = word[1:]
        for index, letter in enumerate(cluster):
            create = create or letter in _TAR_CREATE
            if letter in _TAR_VALUED:
                given = cluster[index + 1 :] or next(words, None)
                if letter == "f":
                    archive = given
                break
    return _local_archive(archive, force_local=force_local) if create else ""


def _zip(args: Sequence[str]) -> str:
    """``zip [options] ARCHIVE FILE...``: the first operand (``-`` is standard output)."""
    if any(word.split("=", 1)[0] in _ZIP_RUNS for word in args):
        return ""
    words = iter(args)
    for word in words:
        if word in _ZIP_VALUED:
            next(words, None)
        elif word == "-" or not word.startswith("-"):
            return _local_archive(word)
    return ""


def _seven_zip(args: Sequence[str]) -> str:
    """``7z a [switches] ARCHIVE FILE...`` (``u`` too); ``-so`` writes to standard output."""
    if not args or args[0] not in ("a", "u") or "-so" in args:
        return ""
    operands = [word for word in args[1:] if not word.startswith("-")]
    return _local_archive(operands[0]) if operands else ""


def _cpio(args: Sequence[str]) -> str:
    """``cpio -o -O FILE`` / ``-F FILE`` / ``--file=FILE`` (otherwise standard output)."""
    create = False
    archive: str | None = None
    words = iter(args)
    for word in words:
        if word.startswith("--"):
            name, _, value = word.partition("=")
            create = create or name == "--create"
            if name == "--file":
                archive = value if value else next(words, None)
        elif word in _CPIO_FILE:
            archive = next(words, None)
        elif word.startswith("-") and not word.startswith("--"):
            create = create or "o" in word[1:]
            if word[1:2] in ("O", "F") and len(word) > 2:
                archive = word[2:]
    return _local_archive(archive) if create else ""


def _rsync(args: Sequence[str]) -> str:
    """``rsync [options] SOURCE... DEST``: the destination, when it is on this host (never
    ``--server``, the end of a transfer another host drives: with ``--sender`` it sends)."""
    if "--server" in args:
        return ""
    operands: list[str] = []
    words = iter(args)
    for word in words:
        if word in _RSYNC_VALUED:
            next(words, None)
        elif not word.startswith("-"):
            operands.append(word)
    if len(operands) < 2 or any(_remote(word) for word in operands):
        return ""
    return operands[-1]


_READERS: dict[str, Callable[[Sequence[str]], str]] = {
    "tar": _tar,
    "gtar": _tar,
    "bsdtar": _tar,
    "zip": _zip,
    "7z": _seven_zip,
    "7za": _seven_zip,
    "7zr": _seven_zip,
    "cpio": _cpio,
    "rsync": _rsync,
}
ARCHIVERS = frozenset(_READERS)


def archive_written(executable: str, args: Sequence[str]) -> str:
    """The local archive (or rsync destination) this run creates; ``""`` when none."""
    reader = _READERS.get(posixpath.basename(executable))
    if reader is None:
        return ""
    return reader(args[1:])
