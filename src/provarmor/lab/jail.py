"""Keeps hold of every process the lab starts, so clean-up can end all of them.

Attacks detach on purpose (``nohup ... &``, double forks, ``setsid``), so a process tree is
not enough to find them again. The jail puts every process it starts into a cgroup v2 group
``provarmor-lab-<token>``: children inherit the group whatever they do, and clean-up ends
the whole group with ``cgroup.kill``. To start a process inside the group, the jail moves
the calling process into it for the instant of the fork and back out again, under one lock
for all jails.
A jail made with ``own=True`` sits directly below ProvArmor's own group
(:mod:`provarmor.sources.owngroup`): what it holds is the lab's machinery, which the sensors
mark as ProvArmor's own; any other jail's processes stay ordinary, observed ones.

A jail made with ``network=NAME`` starts its processes in that network namespace (the lab's
victim: see :mod:`provarmor.lab.netns`): the spawning thread enters it for the fork, so the
program runs as itself, with no ``ip netns exec`` in its ancestry.

Without a cgroup v2 hierarchy it falls back to sessions: each process starts in a new
session, and clean-up kills every process of those sessions and their descendants.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from provarmor.lab.netns import entered
from provarmor.sources.owngroup import OWN_GROUP, cgroup2_root, current_group

JAIL_PREFIX = "provarmor-lab-"
_MOVING = threading.Lock()
"""Held while the spawner sits in a jail's group for a fork: a process is in one group at a
time, so two jails spawning from two threads at once take turns (with a lock per jail, one
jail's child landed in the other's group, and the spawner could be left in a jail whose
clean-up then killed it)."""


def _session_of(pid: int) -> tuple[int, int] | None:
    """(parent pid, session id) of ``pid``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[3])


def _all_pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


class ProcessJail:
    """Starts processes so that :meth:`kill_all` can later end them and all they spawned."""

    def __init__(self, name: str, *, own: bool = False, network: str = "") -> None:
        if not name.startswith(JAIL_PREFIX):
            name = f"{JAIL_PREFIX}{name}"
        self.name = name
        self.network = network
        self._sessions: set[int] = set()
        self._children: list[subprocess.Popen[bytes]] = []
        self._root = cgroup2_root()
        self._group: Path | None = None
        self._home: Path | None = None
        if self._root is not None:
            parent = self._root / OWN_GROUP if own else self._root
            with contextlib.suppress(OSError):
                parent.mkdir(exist_ok=True)
                (parent / name).mkdir(exist_ok=True)
                self._group = parent / name
                self._home = current_group(self._root)

    @property
    def uses_cgroup(self) -> bool:
        return self._group is not None

    def spawn(self, argv: Sequence[str], **options: object) -> subprocess.Popen[bytes]:
        """``subprocess.Popen(argv, **options)`` inside the jail (in a new session)."""
        with _MOVING:
            moved = self._enter()
            try:
                with entered(self.network) if self.network else contextlib.nullcontext():
                    process: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
                        list(argv), start_new_session=True, **options
                    )
            finally:
                if moved:
                    self._leave()
        self._sessions.add(process.pid)
        self._children.append(process)
        return process

    def _enter(self) -> bool:
        if self._group is None or self._root is None:
            return False
        with contextlib.suppress(OSError):
            self._home = current_group(self._root)  # where this process is now (it may have moved)
        try:
            (self._group / "cgroup.procs").write_text(f"{os.getpid()}\n")
        except OSError:
            return False
        return True

    def _leave(self) -> None:
        if self._home is not None:
            (self._home / "cgroup.procs").write_text(f"{os.getpid()}\n")

    def pids(self) -> list[int]:
        """Processes in the jail now."""
        if self._group is not None:
            with contextlib.suppress(OSError):
                text = (self._group / "cgroup.procs").read_text()
                return [int(word) for word in text.split()]
            return []
        return self._session_members()

    def _session_members(self) -> list[int]:
        members: set[int] = set()
        parents: dict[int, int] = {}
        for pid in _all_pids():
            info = _session_of(pid)
            if info is None:
                continue
            parents[pid] = info[0]
            if info[1] in self._sessions:
                members.add(pid)
        grown = True
        while grown:
            grown = False
            for pid, parent in parents.items():
                if parent in members and pid not in members:
                    members.add(pid)
                    grown = True
        members.discard(os.getpid())
        return sorted(members)

    def kill_all(self, *, timeout: float = 5.0) -> None:
        """End every process in the jail and remove the group. Idempotent."""
        if self._group is not None:
            kill_group(self._group, timeout=timeout)
        else:
            for pid in self._session_members():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for child in self._children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=timeout)
        self._children.clear()


def kill_group(group: Path, *, timeout: float = 5.0) -> None:
    """SIGKILL everything in cgroup ``group`` (and its children groups), then remove it."""
    if not group.is_dir():
        return
    for child in sorted(group.iterdir(), reverse=True):
        if child.is_dir():
            kill_group(child, timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            (group / "cgroup.kill").write_text("1\n")
        except OSError:
            _kill_listed(group)
        try:
            group.rmdir()
        except OSError:
            time.sleep(0.05)
            continue
        return


def _kill_listed(group: Path) -> None:
    with contextlib.suppress(OSError):
        for word in (group / "cgroup.procs").read_text().split():
            if int(word) != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(word), signal.SIGKILL)


def leftover_jails() -> list[Path]:
    """``provarmor-lab-*`` groups that exist now, below the root or ProvArmor's own group
    (a crashed run left them)."""
    root = cgroup2_root()
    if root is None or not root.is_dir():
        return []
    found = [*root.glob(f"{JAIL_PREFIX}*"), *(root / OWN_GROUP).glob(f"{JAIL_PREFIX}*")]
    return sorted(path for path in found if path.is_dir())


def cleanup_jails() -> list[str]:
    """Kill and remove every leftover lab group; returns what was removed."""
    removed = []
    for group in leftover_jails():
        kill_group(group)
        removed.append(f"cgroup {group.name}")
    return removed
