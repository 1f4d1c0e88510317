"""Byte-for-byte restore of the system files a scenario may touch.

Persistence and privilege-escalation steps edit real configuration: crontabs, systemd
units, sudoers drop-ins, ``authorized_keys``, shell rc files, ``/etc/ld.so.preload``. Before
a run the lab records every watched file (content, mode, owner, or its absence) and the
listing of every watched directory; afterwards :func:`restore` removes entries that appeared
in watched directories and writes back every file that changed, so the machine ends as it
began. The user database is never written back whole (other processes change accounts
meanwhile): the snapshot carries the :class:`~provarmor.lab.account_journal.AccountJournal`
of the accounts the run said it would touch, and :func:`restore` reverts exactly those.

The snapshot is also written to ``/var/lib/provarmor/lab/`` before the run starts, so
:func:`provarmor.lab.cleanup` can restore it after a crash.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import msgspec

from provarmor.lab import account_journal
from provarmor.lab.account_journal import AccountJournal, AccountReport

STATE_DIR = Path("/var/lib/provarmor/lab")

WATCHED_FILES = (
    "/etc/ld.so.preload",
    "/etc/crontab",
    "/etc/sudoers",
    "/etc/hosts",
    "/etc/environment",
    "/etc/profile",
    "/etc/bash.bashrc",
    "/root/.bashrc",
    "/root/.profile",
    "/root/.bash_history",
    "/etc/rc.local",
)
WATCHED_DIRS = (
    "/etc/sudoers.d",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/var/spool/cron/crontabs",
    "/etc/systemd/system",
    "/etc/profile.d",
    "/root/.ssh",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/local/lib",
    "/etc/ld.so.conf.d",
    "/etc/logrotate.d",
    "/etc/update-motd.d",
    "/etc/init.d",
)
_MAX_BYTES = 4 * 1024 * 1024
_UNMANAGED = -1
"""``FileState.mode`` of a file too large to keep: it is never written back."""


class FileState(msgspec.Struct, frozen=True, kw_only=True):
    """One path as it was: absent, a symlink, or a regular file with its bytes."""

    path: str
    exists: bool
    link: str = ""
    content: str = ""
    """Base64 of the bytes (regular files up to 4 MiB; larger ones are not managed)."""
    mode: int = 0
    uid: int = 0
    gid: int = 0


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Format 2: the account journal replaced format 1's whole account files and user list
    (a format-1 leftover is restored without them: its accounts are left alone)."""

    format_version: int = 2
    run_id: str
    files: tuple[FileState, ...]
    accounts: AccountJournal = AccountJournal()


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreReport:
    removed: tuple[str, ...]
    rewritten: tuple[str, ...]
    accounts: AccountReport


def _state_of(path: Path) -> FileState:
    if path.is_symlink():
        return FileState(path=str(path), exists=True, link=os.readlink(path))
    if not path.is_file():
        return FileState(path=str(path), exists=path.exists())
    info = path.stat()
    if info.st_size > _MAX_BYTES:
        return FileState(path=str(path), exists=True, mode=_UNMANAGED)
    data = path.read_bytes()
    return FileState(
        path=str(path),
        exists=True,
        content=base64.b64encode(data).decode("ascii"),
        mode=info.st_mode & 0o7777,
        uid=info.st_uid,
        gid=info.st_gid,
    )


def _tree(directory: Path) -> list[Path]:
    if not directory.is_dir() or directory.is_symlink():
        return []
    found = []
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            found.append(Path(root) / name)
    return found


def take(run_id: str, accounts: AccountJournal | None = None) -> Snapshot:
    """Record every watched file and directory now, with the journal of the accounts the
    run will touch."""
    paths = [Path(name) for name in WATCHED_FILES]
    for directory in WATCHED_DIRS:
        paths.append(Path(directory))
        paths.extend(_tree(Path(directory)))
    files = tuple(_state_of(path) for path in paths)
    return Snapshot(run_id=run_id, files=files, accounts=accounts or AccountJournal())


def save(snapshot: Snapshot) -> Path:
    """Persist the snapshot (root-only) so a crashed run can still be restored. Written
    aside and renamed over the last one: a run killed while it saves again (a workload
    naming one more account) leaves the previous snapshot whole, never a cut one."""
    STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = STATE_DIR / f"snapshot-{snapshot.run_id}.json"
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_bytes(msgspec.json.encode(snapshot))
    temporary.chmod(0o600)
    temporary.replace(path)
    return path


def load(path: Path) -> Snapshot:
    return msgspec.json.decode(path.read_bytes(), type=Snapshot)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _write_back(state: FileState) -> None:
    path = Path(state.path)
    if state.link:
        _remove(path)
        path.symlink_to(state.link)
        return
    if path.is_symlink() or path.is_dir():
        _remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.provarmor-restore")
    temporary.write_bytes(base64.b64decode(state.content))
    os.chown(temporary, state.uid, state.gid)
    temporary.chmod(state.mode)
    temporary.replace(path)


def restore(snapshot: Snapshot) -> RestoreReport:
    """Put every watched path back as the snapshot recorded it and revert its accounts."""
    accounts = account_journal.revert(snapshot.accounts)
    known = {state.path: state for state in snapshot.files}
    removed = []
    for directory in WATCHED_DIRS:
        for path in sorted(_tree(Path(directory)), reverse=True):
            if str(path) not in known:
                _remove(path)
                removed.append(str(path))
    rewritten = []
    for state in snapshot.files:
        if _unmanaged(state) or _state_of(Path(state.path)) == state:
            continue
        if not state.exists:
            _remove(Path(state.path))
            removed.append(state.path)
        elif state.link or state.content or state.mode:
            _write_back(state)
            rewritten.append(state.path)
        else:
            Path(state.path).mkdir(parents=True, exist_ok=True)
    return RestoreReport(removed=tuple(removed), rewritten=tuple(rewritten), accounts=accounts)


def _unmanaged(state: FileState) -> bool:
    """Too large to keep, or a whole account file (in a format-1 snapshot)."""
    return state.mode == _UNMANAGED or state.path in account_journal.ACCOUNT_FILES


def differences(snapshot: Snapshot) -> list[str]:
    """What differs from the snapshot now (empty when the machine is as it was)."""
    problems = account_journal.differences(snapshot.accounts)
    known = {state.path for state in snapshot.files}
    for directory in WATCHED_DIRS:
        problems += [f"{path} added" for path in _tree(Path(directory)) if str(path) not in known]
    for state in snapshot.files:
        if not _unmanaged(state) and _state_of(Path(state.path)) != state:
            problems.append(f"{state.path} changed")
    return problems


def restore_leftovers() -> list[str]:
    """Restore and delete every persisted snapshot (a crashed run's), the newest first;
    returns what changed, and a line for each snapshot that cannot be read (kept).

    Newest first: a run started while an earlier one's accounts were still there journals
    them as existing, so undoing it first keeps them, and undoing the earlier run then
    deletes them; the other way round, the later restore would write them back."""
    changed: list[str] = []
    if not STATE_DIR.is_dir():
        return changed
    paths = sorted(STATE_DIR.glob("snapshot-*.json"), key=_saved_at, reverse=True)
    for path in paths:
        try:
            snapshot = load(path)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            changed.append(f"{path}: unreadable, kept (nothing of it restored): {exc}")
            continue
        report = restore(snapshot)
        changed += [*report.removed, *report.rewritten, *report.accounts.entries_restored]
        changed += [f"user {name}" for name in report.accounts.users_deleted]
        changed += [f"group {name}" for name in report.accounts.groups_deleted]
        path.unlink()
    return changed


def _saved_at(path: Path) -> tuple[int, str]:
    try:
        return path.stat().st_mtime_ns, path.name
    except OSError:
        return 0, path.name
