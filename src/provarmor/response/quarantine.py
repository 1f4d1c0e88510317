"""``quarantine`` (move a file into the owner-only quarantine store) and its undo
``restore`` (put it back exactly: same path, bytes, owner, group, mode and mtime).

Store layout (``<state_dir>/quarantine``, mode 0700, root's)::

    <id>.data    the file's bytes, mode 0600 (never executable from the store)
    <id>.json    a QuarantineRecord (format_version 1): path, sha256, size, owner, mode, mtime

The file is copied into the store (hashed on the way, fsynced), and only then unlinked from
its path, and only if the path still names the inode that was copied. Symbolic links and
anything other than a regular file are refused. Restore writes a temporary file beside the
original path, checks the hash, sets owner, mode and times, and links it into place without
replacing anything that appeared at that path meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
import uuid
from pathlib import Path

import msgspec

from provarmor.model.errors import StorageError
from provarmor.response.action import Action, ResponseContext, failed, refused
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    ActionResult,
    FileTarget,
    Outcome,
    QuarantinedTarget,
)
from provarmor.storage.private import DIRECTORY_MODE, private_dir

FORMAT_VERSION = 1
CHUNK = 1 << 20
_ID = re.compile(r"[0-9a-f]{32}")


class QuarantineRecord(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int
    id: str
    path: str
    sha256: str
    size: int
    uid: int
    gid: int
    mode: int
    """``st_mode`` permission bits (setuid/setgid/sticky included)."""
    mtime_ns: int
    quarantined_ns: int


def store_dir(context: ResponseContext) -> Path:
    directory = context.settings.quarantine_dir
    private_dir(directory)
    os.chmod(directory, DIRECTORY_MODE)
    return directory


def _copy(source: int, destination: int) -> tuple[str, int]:
    """Copy ``source`` to ``destination`` (file descriptors); returns (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(source, CHUNK):
        digest.update(chunk)
        size += len(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(destination, view) :]
    os.fsync(destination)
    return digest.hexdigest(), size


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def quarantine_file(request: ActionRequest, context: ResponseContext) -> ActionResult:
    target = request.target
    assert isinstance(target, FileTarget)
    path = Path(target.path)
    if not path.is_absolute():
        return refused(f"not an absolute path: {target.path!r}")
    try:
        source = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        return refused(f"{path}: {exc.strerror} (a symbolic link, or gone)")
    try:
        info = os.fstat(source)
        if not stat.S_ISREG(info.st_mode):
            return refused(f"{path}: not a regular file")
        directory = store_dir(context)
        quarantine_id = uuid.uuid4().hex
        data = directory / f"{quarantine_id}.data"
        destination = os.open(data, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            sha256, size = _copy(source, destination)
        finally:
            os.close(destination)
    finally:
        os.close(source)
    now = os.lstat(path) if os.path.lexists(path) else None
    if now is None or (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
        data.unlink()
        return failed(f"{path} changed while it was copied; left in place")
    record = QuarantineRecord(
        format_version=FORMAT_VERSION,
        id=quarantine_id,
        path=str(path),
        sha256=sha256,
        size=size,
        uid=info.st_uid,
        gid=info.st_gid,
        mode=stat.S_IMODE(info.st_mode),
        mtime_ns=info.st_mtime_ns,
        quarantined_ns=time.time_ns(),
    )
    _write_atomic(directory / f"{quarantine_id}.json", msgspec.json.encode(record))
    os.unlink(path)
    return ActionResult(
        outcome=Outcome.DONE,
        message=f"quarantined {path} (sha256 {sha256}, {size} bytes) as {quarantine_id}",
        affected=(str(path),),
        undo_target=QuarantinedTarget(quarantine_id=quarantine_id),
    )


def read_record(context: ResponseContext, quarantine_id: str) -> QuarantineRecord:
    """The stored record of ``quarantine_id`` (:class:`StorageError` when unreadable)."""
    if not _ID.fullmatch(quarantine_id):
        raise StorageError(f"not a quarantine id: {quarantine_id!r}")
    path = context.settings.quarantine_dir / f"{quarantine_id}.json"
    try:
        record = msgspec.json.decode(path.read_bytes(), type=QuarantineRecord)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StorageError(f"unreadable quarantine record: {exc}", location=str(path)) from None
    if record.format_version != FORMAT_VERSION:
        raise StorageError(
            f"quarantine record format {record.format_version} (this build reads {FORMAT_VERSION})",
            location=str(path),
        )
    return record


def restore_file(request: ActionRequest, context: ResponseContext) -> ActionResult:
    target = request.target
    assert isinstance(target, QuarantinedTarget)
    try:
        record = read_record(context, target.quarantine_id)
    except StorageError as exc:
        return failed(str(exc))
    path = Path(record.path)
    if os.path.lexists(path):
        return failed(f"{path} exists again; the quarantined copy stays in the store")
    data = context.settings.quarantine_dir / f"{record.id}.data"
    temporary = path.with_name(f".provarmor-restore-{record.id}")
    try:
        source = os.open(data, os.O_RDONLY)
    except OSError as exc:
        return failed(f"{data}: {exc.strerror}")
    try:
        destination = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        os.close(source)
        return failed(f"cannot write beside {path}: {exc.strerror}")
    try:
        sha256, _ = _copy(source, destination)
        os.fchown(destination, record.uid, record.gid)
        os.fchmod(destination, record.mode)  # after chown, which clears setuid/setgid
        os.utime(destination, ns=(record.mtime_ns, record.mtime_ns))
    finally:
        os.close(source)
        os.close(destination)
    if sha256 != record.sha256:
        temporary.unlink()
        return failed(f"the stored copy of {path} is damaged (sha256 {sha256})")
    try:
        os.link(temporary, path)  # never replaces what may have appeared meanwhile
    except OSError as exc:
        return failed(f"{path}: {exc.strerror}; the quarantined copy stays in the store")
    finally:
        temporary.unlink()
    for leftover in (data, data.with_suffix(".json")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    return ActionResult(
        outcome=Outcome.DONE,
        message=f"restored {path} (sha256 {sha256})",
        affected=(str(path),),
    )


QUARANTINE = Action(ActionKind.QUARANTINE, FileTarget, quarantine_file, undo=ActionKind.RESTORE)
RESTORE = Action(ActionKind.RESTORE, QuarantinedTarget, restore_file)
