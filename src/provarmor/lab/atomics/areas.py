"""Where an atomic test may write and delete, and the judgement of one path against that.

A test runs in a sandbox whose ``/tmp``, ``/var/tmp`` and ``/root`` are the test's own
scratch directories (bind mounts in a private mount namespace), so paths there are the
test's. The system files the lab snapshots (:mod:`provarmor.lab.snapshot`) are written back
byte for byte after each test, so a test may change those too, with a few exceptions that
matter before the restore comes: the user database and ``/etc/ld.so.preload`` (they act on
every process on the host at once), ``/etc/ssh``, the logging and audit configuration and
logs (the agent's sensors depend on them), devices, ``/proc/sys`` and ``/sys``. Anything
else outside the scratch area is refused. Everything here is pure.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from enum import StrEnum

from provarmor.lab.snapshot import WATCHED_DIRS, WATCHED_FILES

HOME = "/root"
"""The home directory tests run with (the sandbox mounts the test's scratch home on it)."""
PRIVATE = ("/tmp", "/var/tmp", HOME)  # noqa: S108  (names of places, not temporary files)
"""Paths the sandbox replaces with the test's scratch directories."""
_DEVICES_ALLOWED = frozenset(
    {"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/tty"}
)
_DEVICE_PREFIXES_ALLOWED = ("/dev/fd/", "/proc/self/fd/")
_ACCOUNT_FILES = frozenset(
    {"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/master.passwd"}
)
_LOGGING = (
    "/var/log",
    "/run/log",
    "/etc/audit",
    "/etc/audisp",
    "/etc/rsyslog.conf",
    "/etc/rsyslog.d",
    "/etc/syslog.conf",
    "/etc/syslog-ng",
    "/etc/systemd/journald.conf",
    "/etc/libaudit.conf",
)


class PathHazard(StrEnum):
    """Why a path may not be touched (the safety screen's hazard names)."""

    DELETE = "delete"
    WRITE = "write"
    ACCOUNTS = "accounts"
    PRELOAD = "preload"
    SSHD = "sshd"
    LOGGING = "logging"
    DEVICE = "block-device"
    KERNEL = "kernel-setting"
    POWER = "power"


@dataclass(frozen=True, slots=True, kw_only=True)
class Areas:
    """The scratch area (private to the test) and the files the snapshot restores."""

    scratch: tuple[str, ...] = PRIVATE
    restored_files: frozenset[str] = field(default_factory=lambda: frozenset(WATCHED_FILES))
    restored_dirs: tuple[str, ...] = WATCHED_DIRS

    def with_scratch(self, *paths: str) -> Areas:
        return Areas(
            scratch=(*self.scratch, *paths),
            restored_files=self.restored_files,
            restored_dirs=self.restored_dirs,
        )


def within(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or lies below it."""
    prefix = prefix.rstrip("/") or "/"
    return path == prefix or path.startswith(prefix + "/") or prefix == "/"


def expand_home(path: str) -> str:
    """``~``, ``~/x``, ``$HOME/x`` and ``${HOME}/x`` spelt out (the sandbox's home)."""
    for spelling in ("${HOME}", "$HOME", "~"):
        if path == spelling or path.startswith(spelling + "/"):
            return HOME + path[len(spelling) :]
    return path


_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def drop_unset(path: str, unset: frozenset[str]) -> str:
    """``path`` with the variables in ``unset`` (never assigned: they expand to '') removed."""
    return _VARIABLE.sub(lambda m: "" if m.group(1) in unset else m.group(0), path)


def resolve(path: str, *, cwd: str | None, unset: frozenset[str] = frozenset()) -> str | None:
    """The absolute, normalised form of ``path`` (None when it depends on the run: a
    variable, a substitution, or a relative path in an unknown directory). Variables in
    ``unset`` are known to be empty."""
    path = expand_home(drop_unset(path.strip(), unset))
    if "$" in path or "`" in path:
        return None
    if not path:
        return ""
    if not path.startswith("/"):
        if cwd is None:
            return None
        path = posixpath.join(cwd, path)
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/")


def _before_glob(path: str) -> str:
    """The directory part of ``path`` before its first wildcard component."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        if any(char in part for char in "*?["):
            return "/".join(parts[:index]) or "/"
    return path


def _special(path: str) -> PathHazard | None:
    """Paths that may never be written, whatever the snapshot restores."""
    if path == "/proc/sysrq-trigger":
        return PathHazard.POWER
    if path in _ACCOUNT_FILES:
        return PathHazard.ACCOUNTS
    if path == "/etc/ld.so.preload":
        return PathHazard.PRELOAD
    if within(path, "/etc/ssh"):
        return PathHazard.SSHD
    if any(within(path, prefix) for prefix in _LOGGING):
        return PathHazard.LOGGING
    if within(path, "/dev"):
        allowed = path in _DEVICES_ALLOWED or path.startswith(_DEVICE_PREFIXES_ALLOWED)
        return None if allowed else PathHazard.DEVICE
    if within(path, "/proc/sys") or within(path, "/sys"):
        return PathHazard.KERNEL
    if within(path, "/proc") and not path.startswith(_DEVICE_PREFIXES_ALLOWED):
        return PathHazard.KERNEL
    return None


def _restored(path: str, areas: Areas) -> bool:
    if path in areas.restored_files:
        return True
    return any(path.startswith(directory.rstrip("/") + "/") for directory in areas.restored_dirs)


def judge_path(
    path: str,
    *,
    areas: Areas,
    cwd: str | None,
    deleting: bool = False,
    unset: frozenset[str] = frozenset(),
) -> tuple[PathHazard, str] | None:
    """Why writing (or deleting) ``path`` is not allowed, or None when it is (an empty path,
    from variables that are never set, names nothing)."""
    resolved = resolve(path, cwd=cwd, unset=unset)
    if resolved == "":
        return None
    if resolved is None:
        if deleting:
            return PathHazard.DELETE, f"{path} (only known when it runs)"
        return None
    target = _before_glob(resolved) if deleting else resolved
    if target in _DEVICES_ALLOWED or target.startswith(_DEVICE_PREFIXES_ALLOWED):
        return None
    contents = target != resolved  # a wildcard below target: only what is inside it goes
    special = _special(target)
    if special is not None:
        return special, resolved
    for prefix in areas.scratch:
        if within(target, prefix) and (target != prefix or contents or not deleting):
            return None
    if _restored(target, areas) or (contents and target in areas.restored_dirs):
        return None
    return (PathHazard.DELETE if deleting else PathHazard.WRITE), resolved
