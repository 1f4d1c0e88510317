"""The baseline of persistence files: what shell start-up files, crontabs, authorized_keys
and ``ld.so.preload`` held before an attack, so ``revert_file`` can take back exactly the
lines it added.

Which files: ``response.persistence_files`` (absolute paths, ``*`` within one segment;
``~/`` is root's home and every real user's, uid 1000 and above, nobody excepted).

When: the agent with a response policy reads them at start, then every
``response.baseline_refresh_seconds`` (0: at start only). Not on a write from a lowering
context: the agent would have to tell a package transaction's write from an attack's at the
moment of the write, and a refresh that happened to follow an attack's write would take its
lines in. Instead a changed file gets a new **version** (up to ``baseline_versions`` per file,
the oldest go first), and a revert goes back to the newest version taken before the
attack's write.

A version is one of: the file's bytes with owner and sha256 (``present``), its absence
(``absent``: a file that appeared later was all the attack's), or ``not_kept`` with the
reason (larger than ``baseline_file_bytes``, the baseline full at ``baseline_total_bytes``,
a symbolic link, unreadable): such a file is never reverted. Each pattern remembers since
when it is covered, so a path that matches it and has no version older than a write was
absent then. What is not kept is counted (``baseline.not_kept``, of which
``baseline.full``; ``baseline.versions_dropped``), never silently dropped.

Stored as ``<state_dir>/baseline.json`` (a :class:`Baseline`, format_version 1; mode
0600, written to a temporary file, fsynced and renamed over the old one). :func:`refresh`
and :func:`version_before` are pure; :func:`observe` reads the host.
"""

from __future__ import annotations

import collections
import glob
import hashlib
import os
import pwd
import stat
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path, PurePosixPath

import msgspec

from provarmor.model.errors import StorageError
from provarmor.storage.private import private_dir

FORMAT_VERSION = 1
FIRST_REAL_UID = 1000
NOBODY_UID = 65534


class FileState(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"
    NOT_KEPT = "not_kept"


class FileVersion(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One path as it was at ``taken_ns`` (nanoseconds since the epoch)."""

    taken_ns: int
    state: FileState
    content: bytes = b""
    """The bytes (``present`` only)."""
    sha256: str = ""
    """Of the bytes, also of a file ``not_kept`` when they were read (the baseline full)."""
    uid: int = 0
    gid: int = 0
    reason: str = ""
    """Why the content is not kept (``not_kept`` only)."""

    def key(self) -> tuple[bool, str, int, int]:
        """What tells two states of a file apart: there or not, its bytes (else why they
        were not read), its owner."""
        return (self.state is FileState.ABSENT, self.sha256 or self.reason, self.uid, self.gid)


class FileHistory(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    path: str
    versions: tuple[FileVersion, ...]
    """Oldest first."""
    truncated: bool = False
    """Older versions were dropped (the path's state before the oldest kept is unknown)."""


class Coverage(msgspec.Struct, frozen=True, kw_only=True):
    pattern: str
    """An absolute pattern (``~/`` expanded to one home)."""
    since_ns: int


class Baseline(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int = FORMAT_VERSION
    covered: tuple[Coverage, ...] = ()
    files: tuple[FileHistory, ...] = ()


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    versions: int
    """Versions kept per file."""
    total_bytes: int
    """Content kept in all."""


# -- pure ------------------------------------------------------------------------------------


def expand(patterns: Iterable[str], homes: Iterable[str]) -> tuple[str, ...]:
    """The absolute patterns of ``patterns``: each ``~/...`` once per home (glob characters
    in a home's name escaped)."""
    homes = tuple(homes)
    expanded: dict[str, None] = {}
    for pattern in patterns:
        if pattern.startswith("~/"):
            for home in homes:
                expanded[glob.escape(home.rstrip("/")) + pattern[1:]] = None
        else:
            expanded[pattern] = None
    return tuple(expanded)


def matches(path: str, patterns: Iterable[str]) -> bool:
    """``path`` (absolute, normalised) matches one of the absolute ``patterns``."""
    if not path.startswith("/") or os.path.normpath(path) != path:
        return False
    pure = PurePosixPath(path)
    return any(pure.match(pattern) for pattern in patterns)


def refresh(
    baseline: Baseline,
    observed: Mapping[str, FileVersion],
    patterns: tuple[str, ...],
    *,
    now_ns: int,
    limits: Limits,
) -> tuple[Baseline, collections.Counter[str]]:
    """The baseline after looking at the files again: ``observed`` is every existing path
    that matches ``patterns`` (taken at ``now_ns``). A path whose state changed gets a new
    version; histories of paths no pattern covers any more are dropped. Returns the new
    baseline and what was not kept (counted)."""
    counts: collections.Counter[str] = collections.Counter()
    since = {c.pattern: c.since_ns for c in baseline.covered}
    covered = tuple(Coverage(pattern=p, since_ns=since.get(p, now_ns)) for p in patterns)
    histories = {h.path: h for h in baseline.files if matches(h.path, patterns)}
    kept = sum(len(v.content) for h in histories.values() for v in h.versions)
    for path in sorted(set(histories) | set(observed)):
        history = histories.get(path)
        now = observed.get(path, FileVersion(taken_ns=now_ns, state=FileState.ABSENT))
        if history is None and now.state is FileState.ABSENT:
            continue
        if history is not None and history.versions[-1].key() == now.key():
            continue
        if now.state is FileState.PRESENT and kept + len(now.content) > limits.total_bytes:
            now = msgspec.structs.replace(
                now,
                state=FileState.NOT_KEPT,
                content=b"",
                reason=f"the baseline is full ({limits.total_bytes} bytes)",
            )
            counts["baseline.full"] += 1
        if now.state is FileState.NOT_KEPT:
            counts["baseline.not_kept"] += 1
        kept += len(now.content)
        versions = (*(history.versions if history else ()), now)
        truncated = history.truncated if history else False
        if len(versions) > limits.versions:
            dropped = versions[: len(versions) - limits.versions]
            kept -= sum(len(v.content) for v in dropped)
            versions = versions[len(dropped) :]
            truncated = True
            counts["baseline.versions_dropped"] += len(dropped)
        histories[path] = FileHistory(path=path, versions=versions, truncated=truncated)
    files = tuple(histories[path] for path in sorted(histories))
    return Baseline(covered=covered, files=files), counts


def version_before(baseline: Baseline, path: str, before_ns: int) -> FileVersion | str:
    """The state of ``path`` in the newest version taken before ``before_ns`` (0: the newest
    there is); a path covered since before then with no version was absent. A string says
    why there is none."""
    history = next((h for h in baseline.files if h.path == path), None)
    versions = history.versions if history is not None else ()
    older = [v for v in versions if before_ns == 0 or v.taken_ns < before_ns]
    if older:
        return older[-1]
    if history is not None and history.truncated:
        return f"the baseline's versions of {path} from before the write were dropped"
    since = [c.since_ns for c in baseline.covered if matches(path, (c.pattern,))]
    if since and (before_ns == 0 or min(since) < before_ns):
        return FileVersion(taken_ns=min(since), state=FileState.ABSENT)
    return f"no baseline of {path} from before the write"


# -- the host --------------------------------------------------------------------------------


def home_folders() -> tuple[str, ...]:
    """Root's home and those of real users (uid 1000 and above, nobody excepted) that
    exist."""
    homes = [
        entry.pw_dir
        for entry in pwd.getpwall()
        if (entry.pw_uid == 0 or FIRST_REAL_UID <= entry.pw_uid != NOBODY_UID)
        and entry.pw_dir.startswith("/")
        and os.path.isdir(entry.pw_dir)
    ]
    return tuple(dict.fromkeys(os.path.normpath(home) for home in homes))


def read_bounded(descriptor: int, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of an open file (one more than ``limit``: too large)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit and (chunk := os.read(descriptor, min(1 << 20, limit + 1 - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def observe_file(path: str, *, now_ns: int, file_bytes: int) -> FileVersion:
    """The state of one existing path (its bytes when it is a regular file that fits)."""

    def not_kept(reason: str, info: os.stat_result | None = None) -> FileVersion:
        uid, gid = (info.st_uid, info.st_gid) if info is not None else (0, 0)
        return FileVersion(
            taken_ns=now_ns, state=FileState.NOT_KEPT, reason=reason, uid=uid, gid=gid
        )

    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        return not_kept("a symbolic link" if os.path.islink(path) else exc.strerror or "?")
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return not_kept("not a regular file", info)
        data = read_bounded(descriptor, file_bytes)
    except OSError as exc:
        return not_kept(exc.strerror or "unreadable")
    finally:
        os.close(descriptor)
    if len(data) > file_bytes:
        return not_kept(f"larger than {file_bytes} bytes", info)
    return FileVersion(
        taken_ns=now_ns,
        state=FileState.PRESENT,
        content=data,
        sha256=hashlib.sha256(data).hexdigest(),
        uid=info.st_uid,
        gid=info.st_gid,
    )


def observe(patterns: Iterable[str], *, now_ns: int, file_bytes: int) -> dict[str, FileVersion]:
    """Every existing path that matches one of the absolute ``patterns``, as it is now."""
    found: dict[str, FileVersion] = {}
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, include_hidden=True)):
            normal = os.path.normpath(path)
            if normal not in found:
                found[normal] = observe_file(normal, now_ns=now_ns, file_bytes=file_bytes)
    return found


def read_baseline(path: Path) -> Baseline:
    """The stored baseline (an empty one when there is none; :class:`StorageError` when it
    is damaged or of another format version)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Baseline()
    except OSError as exc:
        raise StorageError(f"unreadable baseline: {exc.strerror}", location=str(path)) from None
    try:
        version = msgspec.json.decode(data, type=dict[str, object]).get("format_version")
        if version != FORMAT_VERSION:
            raise StorageError(
                f"baseline format {version} (this build reads {FORMAT_VERSION})",
                location=str(path),
            )
        return msgspec.json.decode(data, type=Baseline)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StorageError(f"damaged baseline: {exc}", location=str(path)) from None


def write_baseline(path: Path, baseline: Baseline) -> None:
    """Store ``baseline`` atomically (owner-only folder and file)."""
    private_dir(path.parent)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(msgspec.json.encode(baseline))
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
