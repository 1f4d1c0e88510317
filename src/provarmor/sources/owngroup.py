"""ProvArmor's own cgroup: how the sensor tells ProvArmor's processes from everyone else's.

``provarmor up``, ``provarmor agent`` and ``provarmor lab run`` move themselves into the cgroup
v2 group :data:`OWN_GROUP` while they run (:func:`own_group`); every process they start
directly (the lab's ``ip netns``, ``useradd``, compilers of payloads, installers) inherits it
from the kernel. The lab's jails move their processes (victim services, attack steps, benign
workloads) into groups of their own, so those stay ordinary, visible processes; the lab's
machinery (the attacker's remote side and the lab's plumbing) runs in a jail directly below
:data:`OWN_GROUP`, so it is ProvArmor's own and still ends with its jail.

The eBPF sensor compares, inside the kernel, each new process's cgroup id and the id of the
group above it with :func:`own_group_id` and marks matches in its records (ProvArmor makes
no group deeper than one below its own); processes already running when it starts are
marked from ``/proc/PID/cgroup`` (:func:`in_own_group`). The audit sensor's records carry
no cgroup: it marks the seeded processes, their children, and a process that opens a
``cgroup.procs`` file for writing by where that file is (:func:`moves_into_own_group`), which
is how this module and the lab's jails move themselves. Nothing here looks at program
names. Without cgroup v2 (or without the right to create the group) nothing is marked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

OWN_GROUP = "provarmor.own"
CGROUP_PROCS = "/cgroup.procs"


def cgroup2_root(mounts: Path = Path("/proc/self/mounts")) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted, if it is."""
    try:
        text = mounts.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def cgroup_v2_path(cgroup_text: str) -> str:
    """The cgroup v2 path (``/a/b``) in ``/proc/PID/cgroup`` text ('' without a v2 line)."""
    for line in cgroup_text.splitlines():
        if line.startswith("0::"):
            return line[3:].strip()
    return ""


def in_own_group(cgroup_text: str) -> bool:
    """Whether ``/proc/PID/cgroup`` text puts the process in :data:`OWN_GROUP` (v2 line)."""
    path = cgroup_v2_path(cgroup_text)
    return path == f"/{OWN_GROUP}" or path.startswith(f"/{OWN_GROUP}/")


def moves_into_own_group(procs_path: str) -> bool:
    """Whether writing to the ``cgroup.procs`` file at ``procs_path`` moves a process into
    :data:`OWN_GROUP` (or a group below it): the audit sensor's mark, from the path alone."""
    return f"/{OWN_GROUP}/" in procs_path.removesuffix(CGROUP_PROCS) + "/"


def own_group_id(root: Path | None = None) -> int:
    """The kernel's id of :data:`OWN_GROUP` (its inode number); 0 when it does not exist."""
    root = root if root is not None else cgroup2_root()
    if root is None:
        return 0
    try:
        return (root / OWN_GROUP).stat().st_ino
    except OSError:
        return 0


def current_group(root: Path, *, proc_self: Path = Path("/proc/self/cgroup")) -> Path:
    """The cgroup v2 group this process is in now (the root when it cannot tell)."""
    with contextlib.suppress(OSError):
        for line in proc_self.read_text().splitlines():
            if line.startswith("0::"):
                return root / line[3:].strip().lstrip("/")
    return root


@contextlib.contextmanager
def own_group(root: Path | None = None) -> Iterator[Path | None]:
    """This process in :data:`OWN_GROUP` for the ``with`` block, then back where it was
    (a command run in-process, as tests do, leaves its caller as it found it)."""
    root = root if root is not None else cgroup2_root()
    previous = current_group(root) if root is not None else None
    group = enter_own_group(root)
    try:
        yield group
    finally:
        if group is not None and previous is not None and previous != group:
            with contextlib.suppress(OSError):
                (previous / "cgroup.procs").write_text(f"{os.getpid()}\n")


def enter_own_group(root: Path | None = None) -> Path | None:
    """Move this process (all its threads) into :data:`OWN_GROUP`, creating it; the group,
    or ``None`` when there is no cgroup v2 hierarchy or no right to change it."""
    root = root if root is not None else cgroup2_root()
    if root is None:
        return None
    group = root / OWN_GROUP
    with contextlib.suppress(OSError):
        group.mkdir(exist_ok=True)
        (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
        return group
    return None
