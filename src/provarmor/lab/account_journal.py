"""The lab's own account changes, undone exactly and nothing else.

The machine is shared: while a lab run lasts, other processes (another run, a package's
maintainer script, an administrator) may add, change or remove accounts. Writing whole
account files back would undo their work too (users left without homes, accounts that
vanish), so the lab keeps a journal instead: before it creates or changes an account it
names the users and groups it will touch (:meth:`AccountJournal.naming`) and the journal
keeps those names' entries in every account file as they were (absent, or the line).
:func:`revert` then deletes exactly the journaled users and groups that did not exist
before (their processes killed first, a home removed only when it is their own
``/home/NAME``) and writes back exactly the journaled entries that existed and changed, one
line each, under the shadow suite's lock. Entries of any name the journal does not hold are
never read back, rewritten or removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import grp
import os
import pwd
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

USER_FILES = ("/etc/passwd", "/etc/shadow", "/etc/subuid", "/etc/subgid")
GROUP_FILES = ("/etc/group", "/etc/gshadow")
ACCOUNT_FILES = (*USER_FILES, *GROUP_FILES)
"""Files that hold one entry per user or group, keyed by the name before the first colon.
(``subuid``/``subgid`` are keyed by user name, as useradd writes them.)"""


class AccountEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One name's entry in one account file before the lab touched it ("": none)."""

    path: str
    name: str
    line: str = ""


class AccountJournal(msgspec.Struct, frozen=True, kw_only=True):
    """The users and groups the lab said it would touch, and their entries before."""

    format_version: int = 1
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    before: tuple[AccountEntry, ...] = ()

    def naming(self, *, users: Iterable[str] = (), groups: Iterable[str] = ()) -> AccountJournal:
        """This journal with ``users`` and ``groups`` added, their entries read now (a name
        already journaled keeps its first state)."""
        new_users = [name for name in dict.fromkeys(users) if name not in self.users]
        new_groups = [name for name in dict.fromkeys(groups) if name not in self.groups]
        entries = [
            *_entries(USER_FILES, new_users),
            *_entries(GROUP_FILES, new_groups),
        ]
        return AccountJournal(
            users=(*self.users, *new_users),
            groups=(*self.groups, *new_groups),
            before=(*self.before, *entries),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountReport:
    users_deleted: tuple[str, ...] = ()
    groups_deleted: tuple[str, ...] = ()
    entries_restored: tuple[str, ...] = ()
    """``path:name`` of each entry written back."""


def read_entries(path: str) -> dict[str, str]:
    """``name -> line`` of an account file (empty when it does not exist)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            found.setdefault(line.split(":", 1)[0], line)
    return found


def _entries(paths: Iterable[str], names: list[str]) -> Iterator[AccountEntry]:
    if not names:
        return
    for path in paths:
        current = read_entries(path)
        for name in names:
            yield AccountEntry(path=path, name=name, line=current.get(name, ""))


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _absent_before(journal: AccountJournal, path: str) -> set[str]:
    return {entry.name for entry in journal.before if entry.path == path and not entry.line}


def revert(journal: AccountJournal) -> AccountReport:
    """Undo the journaled changes (see the module docstring); never touches other names."""
    new_users = [
        name
        for name in journal.users
        if name in _absent_before(journal, "/etc/passwd") and _user_exists(name)
    ]
    for name in new_users:
        _delete_user(name)
    new_groups = [
        name
        for name in journal.groups
        if name in _absent_before(journal, "/etc/group") and _group_exists(name)
    ]
    for name in new_groups:
        subprocess.run(["groupdel", "-f", name], check=False, capture_output=True)
    restored: list[str] = []
    with _accounts_locked():
        for path in ACCOUNT_FILES:
            restored += _write_back(path, journal)
    return AccountReport(
        users_deleted=tuple(new_users),
        groups_deleted=tuple(new_groups),
        entries_restored=tuple(restored),
    )


def differences(journal: AccountJournal) -> list[str]:
    """Journaled entries that are not as they were (empty when everything is undone)."""
    found = []
    for path in ACCOUNT_FILES:
        current = read_entries(path)
        for entry in journal.before:
            if entry.path == path and current.get(entry.name, "") != entry.line:
                found.append(f"{path}: {entry.name} {'changed' if entry.line else 'added'}")
    return found


def _delete_user(name: str) -> None:
    entry = pwd.getpwnam(name)
    if entry.pw_uid != 0:  # a uid-0 alias shares root's processes: never kill by its uid
        subprocess.run(
            ["pkill", "-KILL", "-U", str(entry.pw_uid)], check=False, capture_output=True
        )
    # remove the home only when it is the user's own /home/NAME: a test may give a new
    # account an existing home (/root), which must never be deleted with it
    own_home = entry.pw_dir.rstrip("/") == f"/home/{name}"
    command = ["userdel", "-r", "-f", name] if own_home else ["userdel", "-f", name]
    subprocess.run(command, check=False, capture_output=True)


def _write_back(path: str, journal: AccountJournal) -> list[str]:
    """Put each journaled entry of ``path`` back as it was: a changed or removed line is
    written back in place (or appended), an added one removed; other lines stay as they are."""
    wanted = {entry.name: entry.line for entry in journal.before if entry.path == path}
    target = Path(path)
    if not wanted or not target.exists():
        return []
    lines = target.read_text().splitlines()
    names = [line.split(":", 1)[0] if line and not line.startswith("#") else None for line in lines]
    changed: list[str] = []
    kept: list[str] = []
    for name, line in zip(names, lines, strict=True):
        if name not in wanted:
            kept.append(line)
        elif wanted[name] and wanted[name] not in kept:
            kept.append(wanted[name])
            if line != wanted[name]:
                changed.append(name)
        elif not wanted[name]:
            changed.append(name)
    for name, line in wanted.items():
        if line and name not in names:
            kept.append(line)
            changed.append(name)
    if changed:
        _replace(target, "".join(f"{line}\n" for line in kept))
    return [f"{path}:{name}" for name in dict.fromkeys(changed)]


def _replace(target: Path, text: str) -> None:
    """Write ``text`` over ``target`` atomically, keeping its mode and owner."""
    info = target.stat()
    temporary = target.with_name(f".{target.name}.provarmor-journal")
    temporary.write_text(text)
    os.chown(temporary, info.st_uid, info.st_gid)
    temporary.chmod(info.st_mode & 0o7777)
    temporary.replace(target)


@contextlib.contextmanager
def _accounts_locked() -> Iterator[None]:
    """The shadow suite's lock (``lckpwdf``, which useradd and friends take too)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    locked = libc is not None and libc.lckpwdf() == 0
    try:
        yield
    finally:
        if locked and libc is not None:
            libc.ulckpwdf()
