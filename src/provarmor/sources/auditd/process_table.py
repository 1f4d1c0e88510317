"""Which process each pid currently is: pid -> entity id, start time, program, arguments,
parent and open file descriptors.

Audit records name processes by pid only; pids are reused, so the table keeps the identity
(:func:`provarmor.model.ids.process_entity_id` of host, boot, pid and start time) of the
process that holds each pid now. A process first seen through its fork starts at the fork's
time; one first seen doing something else predates the log and gets start 0.

The table is bounded: past ``capacity`` the least recently used entry is evicted (and
counted). Exited processes are removed after their exit event. The live agent seeds it from
/proc with :meth:`ProcessTable.seed` before reading netlink.

The descriptor table per process (fd -> path or socket) lets events that name only a
descriptor (fchmod, ftruncate, mmap, send on a connected socket) name the file or peer. It
is filled from the opens, sockets, connects and accepts the rules report; descriptors
created otherwise (pipe, dup) are unknown, so a stale entry can at worst name the file that
last held that number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provarmor.model.event import Endpoint, Process, ProcessRef
from provarmor.model.ids import process_entity_id

DEFAULT_CAPACITY = 65536
MAX_FDS = 1024
"""Descriptors remembered per process; past that the oldest are forgotten."""


@dataclass(slots=True)
class SocketState:
    """What is known about a socket descriptor."""

    transport: str = ""
    local: Endpoint | None = None
    remote: Endpoint | None = None


@dataclass(slots=True, kw_only=True)
class ProcessState:
    """The table's entry for one live process."""

    pid: int
    entity_id: str
    start: int = 0
    executable: str = ""
    name: str = ""
    args: tuple[str, ...] | None = None
    """None until known (from an exec, a seed or the PROCTITLE record)."""
    parent: ProcessRef | None = None
    own: bool = False
    """In ProvArmor's own cgroup: seeded from /proc, inherited at fork, changed when the process
    opens a ``cgroup.procs`` file for writing (:mod:`provarmor.sources.owngroup`)."""
    fds: dict[int, str | SocketState] = field(default_factory=dict)
    snapshot: Process | None = None
    """The canonical Process last built for this entry (reused while nothing changed)."""
    snapshot_key: tuple[str, ...] = ()

    def set_fd(self, fd: int, target: str | SocketState) -> None:
        fds = self.fds
        fds.pop(fd, None)
        fds[fd] = target
        if len(fds) > MAX_FDS:
            del fds[next(iter(fds))]

    def ref(self) -> ProcessRef:
        """This process as another event's parent or target."""
        return ProcessRef(
            entity_id=self.entity_id,
            pid=self.pid,
            executable=self.executable,
            command_line=" ".join(self.args) if self.args else "",
        )

    def invalidate(self) -> None:
        self.snapshot = None
        self.snapshot_key = ()


class ProcessTable:
    """pid -> :class:`ProcessState` for one host and boot."""

    def __init__(
        self, *, host_id: str, boot_id: str = "", capacity: int = DEFAULT_CAPACITY
    ) -> None:
        self.host_id = host_id
        self.boot_id = boot_id
        self.capacity = capacity
        self.evictions = 0
        """Entries dropped because the table was full."""
        self._entries: dict[int, ProcessState] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, pid: int) -> bool:
        return pid in self._entries

    def entity_id(self, pid: int, start: int) -> str:
        return process_entity_id(host_id=self.host_id, boot_id=self.boot_id, pid=pid, start=start)

    def get(self, pid: int) -> ProcessState | None:
        """The entry for ``pid`` (marking it recently used), or None."""
        entries = self._entries
        state = entries.pop(pid, None)
        if state is not None:
            entries[pid] = state
        return state

    def seed(  # noqa: PLR0913  (every field of an entry may be known or not)
        self,
        pid: int,
        *,
        entity_id: str = "",
        start: int = 0,
        executable: str = "",
        args: tuple[str, ...] | None = None,
        parent: ProcessRef | None = None,
        own: bool = False,
    ) -> ProcessState:
        """Enter a process known from elsewhere (/proc on the live host), replacing any entry
        for the pid. ``entity_id`` defaults to the id derived from ``start``."""
        state = ProcessState(
            pid=pid,
            entity_id=entity_id or self.entity_id(pid, start),
            start=start,
            executable=executable,
            name=executable.rpartition("/")[2],
            args=args,
            parent=parent,
            own=own,
        )
        self._put(state)
        return state

    def lookup(self, pid: int, *, ppid: int) -> ProcessState:
        """The entry for ``pid``, creating one (start 0: it predates the log) when unknown."""
        state = self.get(pid)
        if state is None:
            state = ProcessState(
                pid=pid, entity_id=self.entity_id(pid, 0), parent=self.ref(ppid) if ppid else None
            )
            self._put(state)
        return state

    def fork(self, parent: ProcessState, child_pid: int, *, start: int) -> ProcessState:
        """Enter the child of a fork seen in the log; it inherits program, args and fds."""
        child = ProcessState(
            pid=child_pid,
            entity_id=self.entity_id(child_pid, start),
            start=start,
            executable=parent.executable,
            name=parent.name,
            args=parent.args,
            parent=parent.ref(),
            own=parent.own,
            fds=dict(parent.fds),
        )
        self._put(child)
        return child

    def exit(self, pid: int) -> None:
        """Forget an exited process."""
        self._entries.pop(pid, None)

    def ref(self, pid: int) -> ProcessRef:
        """A reference to whichever process holds ``pid`` (start 0 when not in the table)."""
        state = self._entries.get(pid)
        if state is not None:
            return state.ref()
        return ProcessRef(entity_id=self.entity_id(pid, 0), pid=pid)

    def _put(self, state: ProcessState) -> None:
        entries = self._entries
        entries.pop(state.pid, None)
        entries[state.pid] = state
        if len(entries) > self.capacity:
            del entries[next(iter(entries))]
            self.evictions += 1
