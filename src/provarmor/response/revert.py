"""``revert_file`` (take back the lines an attack added to or changed in a persistence file:
a shell start-up file, a crontab, authorized_keys, ``ld.so.preload``) and its undo
``unrevert_file`` (put those lines back where they were).

The file goes back to its baseline (:mod:`provarmor.response.baseline`: the newest version
taken before the attack's write), line by line: every hunk where the file now differs from
that version must add lines or change lines in place (as ``>>``, ``sed -i`` or an editor's
new line do); a hunk that leaves fewer lines than the baseline had there (lines gone, not
replaced) is not an attack's addition, and the file is left alone. So is a file with no
baseline, one whose content the baseline did not keep, one whose owner changed, one that
is now a symbolic link, not a regular file, has other hard links, or is far larger than a
baseline file may be. A file the baseline says was absent is emptied, not removed (its
inode, owner and mode stay; a person removes it). The lines taken out and where they stood
are the action's undo target (in the audit trail); the undo checks that the file is still
exactly as the revert left it.

The file is written in place (same inode: owner, mode, ACLs, extended attributes and hard
links stay as they are; only the bytes from the first one that changes are written, then
the file is cut to length and fsynced: taking back an appended line is one truncate). Only
paths that ``response.persistence_files`` covers are reverted.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import os
import stat
from dataclasses import dataclass

from provarmor.model.errors import StorageError
from provarmor.response.action import Action, ResponseContext, failed, refused
from provarmor.response.baseline import (
    FileState,
    expand,
    home_folders,
    matches,
    read_baseline,
    read_bounded,
    version_before,
)
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    ActionResult,
    Hunk,
    Outcome,
    PersistenceTarget,
    RevertedTarget,
)

GROWTH = 4
"""A file is reverted only up to this many times ``baseline_file_bytes``."""
PREVIEW = 160


@dataclass(frozen=True, slots=True)
class Revert:
    content: bytes
    """The file as it is to be: its baseline."""
    hunks: tuple[Hunk, ...]


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their ends (``\\n``, ``\\r\\n`` or ``\\r``); joined they are ``data``."""
    return data.splitlines(keepends=True)


def plan_revert(baseline: bytes, current: bytes) -> Revert | str:
    """How ``current`` goes back to ``baseline``: the hunks it added or changed, in order, or
    why it cannot (a string)."""
    before, now = split_lines(baseline), split_lines(current)
    head = 0
    while head < min(len(before), len(now)) and before[head] == now[head]:
        head += 1
    tail = 0
    while tail < min(len(before), len(now)) - head and before[-1 - tail] == now[-1 - tail]:
        tail += 1
    matcher = difflib.SequenceMatcher(
        None, before[head : len(before) - tail], now[head : len(now) - tail], autojunk=False
    )
    hunks: list[Hunk] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if i2 - i1 > j2 - j1:
            return (
                f"{i2 - i1} line(s) of the baseline from line {head + i1 + 1} were replaced by "
                f"{j2 - j1}: lines gone are no attack's addition; left alone"
            )
        lines = b"".join(now[head + j1 : head + j2])
        hunks.append(Hunk(line=head + i1, replaced=i2 - i1, lines=lines))
    if not hunks:
        return "the file is as its baseline: nothing to revert"
    return Revert(content=baseline, hunks=tuple(hunks))


def reapply(reverted: bytes, hunks: tuple[Hunk, ...]) -> bytes:
    """``reverted`` with the ``hunks`` back in place (what the revert took out)."""
    lines = split_lines(reverted)
    for hunk in reversed(hunks):
        lines[hunk.line : hunk.line + hunk.replaced] = [hunk.lines]
    return b"".join(lines)


def _write_in_place(descriptor: int, old: bytes, new: bytes) -> None:
    """Make the open file ``new`` (it holds ``old``), writing from the first changed byte."""
    same = 0
    if old.startswith(new):  # lines taken off the end: only the cut
        same = len(new)
    limit = min(len(old), len(new))
    while same < limit and old[same] == new[same]:
        same += 1
    view = memoryview(new)[same:]
    offset = same
    while view:
        written = os.pwrite(descriptor, view, offset)
        view, offset = view[written:], offset + written
    os.ftruncate(descriptor, len(new))
    os.fsync(descriptor)


def _open_regular(path: str) -> tuple[int, os.stat_result] | str:
    """The file open for reading and writing, or why not (nothing is left open)."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        what = {errno.ELOOP: "a symbolic link", errno.ENOENT: "gone"}.get(exc.errno or 0, "")
        return f"{path}: {what or exc.strerror}"
    info = os.fstat(descriptor)
    reason = ""
    if not stat.S_ISREG(info.st_mode):
        reason = f"{path}: not a regular file"
    elif info.st_nlink > 1:
        reason = f"{path}: {info.st_nlink} hard links (writing it would change the others)"
    if reason:
        os.close(descriptor)
        return reason
    return descriptor, info


def _preview(hunks: tuple[Hunk, ...]) -> str:
    where = ", ".join(
        f"line {h.line + 1} ({'+' if not h.replaced else f'{h.replaced}->'}"
        f"{len(split_lines(h.lines))})"
        for h in hunks
    )
    text = repr(hunks[0].lines[:PREVIEW])[2:-1]
    return f"{where}; first: {text}"


def revert_file(request: ActionRequest, context: ResponseContext) -> ActionResult:
    target = request.target
    assert isinstance(target, PersistenceTarget)
    path = target.path
    settings = context.settings
    if not matches(path, expand(settings.persistence_files, home_folders())):
        return refused(f"{path!r} is not a persistence file (response.persistence_files)")
    try:
        baseline = read_baseline(settings.baseline_file)
    except StorageError as exc:
        return refused(str(exc))
    version = version_before(baseline, path, target.written_ns)
    if isinstance(version, str):
        return refused(version)
    if version.state is FileState.NOT_KEPT:
        return refused(f"the baseline of {path} has no content ({version.reason})")
    opened = _open_regular(path)
    if isinstance(opened, str):
        return refused(opened)
    descriptor, info = opened
    try:
        if version.state is FileState.PRESENT and (info.st_uid, info.st_gid) != (
            version.uid,
            version.gid,
        ):
            return refused(
                f"{path}: owner {info.st_uid}:{info.st_gid}, not the baseline's "
                f"{version.uid}:{version.gid}"
            )
        current = read_bounded(descriptor, GROWTH * settings.baseline_file_bytes)
        if len(current) > GROWTH * settings.baseline_file_bytes:
            return refused(f"{path}: larger than {GROWTH * settings.baseline_file_bytes} bytes")
        plan = plan_revert(version.content, current)
        if isinstance(plan, str):
            return refused(f"{path}: {plan}")
        _write_in_place(descriptor, current, plan.content)
    finally:
        os.close(descriptor)
    return ActionResult(
        outcome=Outcome.DONE,
        message=f"reverted {path} to its baseline ({version.state.value}, taken at "
        f"{version.taken_ns} ns): took out {_preview(plan.hunks)}",
        affected=(path,),
        undo_target=RevertedTarget(
            path=path,
            hunks=plan.hunks,
            reverted_sha256=hashlib.sha256(plan.content).hexdigest(),
            original_sha256=hashlib.sha256(current).hexdigest(),
        ),
    )


def unrevert_file(request: ActionRequest, context: ResponseContext) -> ActionResult:
    target = request.target
    assert isinstance(target, RevertedTarget)
    path = target.path
    opened = _open_regular(path)
    if isinstance(opened, str):
        return failed(opened)
    descriptor, info = opened
    try:
        limit = max(info.st_size, GROWTH * context.settings.baseline_file_bytes)
        current = read_bounded(descriptor, limit)
        if hashlib.sha256(current).hexdigest() != target.reverted_sha256:
            return failed(
                f"{path} changed since the revert; the lines taken out are in the audit trail"
            )
        original = reapply(current, target.hunks)
        if hashlib.sha256(original).hexdigest() != target.original_sha256:
            return failed(f"the recorded hunks of {path} do not give its content back")
        _write_in_place(descriptor, current, original)
    finally:
        os.close(descriptor)
    return ActionResult(
        outcome=Outcome.DONE,
        message=f"put {len(target.hunks)} hunk(s) back into {path}",
        affected=(path,),
    )


REVERT_FILE = Action(
    ActionKind.REVERT_FILE, PersistenceTarget, revert_file, undo=ActionKind.UNREVERT_FILE
)
UNREVERT_FILE = Action(ActionKind.UNREVERT_FILE, RevertedTarget, unrevert_file)
