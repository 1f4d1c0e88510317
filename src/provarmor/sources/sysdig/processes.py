"""The process table of the sysdig importer: which process each pid is, and since when.

A process's ``entity_id`` is ``process_entity_id(host, boot, pid, start)`` where ``start``
is the time its pid was first seen after a fork/clone created it or, for a process already
running when the capture began, the first record that showed the pid (an exec keeps the
start: exec does not change identity). A fork of a pid that is still in the table replaces
the entry (the kernel recycled the pid); an exit removes it.

Rows without any pid (NodLink keeps only ``proc.cmdline`` on most rows) are matched to the
process that most recently exec'd that exact command line.

The table is bounded (least recently used evicted first) and counts its evictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provarmor.model.event import Process, ProcessRef, User
from provarmor.model.ids import process_entity_id
from provarmor.sources.base import HostContext
from provarmor.sources.bounded import BoundedMap

MAX_PID = 2**31 - 1


@dataclass(slots=True)
class ProcessState:
    """One live process as known so far."""

    pid: int
    start: int
    entity_id: str
    executable: str = ""
    name: str = ""
    command_line: str = ""
    ppid: int = 0
    cwd: str = ""
    user: User | None = None
    from_fork: bool = False
    """Created by the parent's side of a fork: the child's own clone record adds nothing."""
    server_ports: set[int] = field(default_factory=set)
    """Local ports this process bound or accepted on: the server side of its sockets."""

    def as_process(self, parent: ProcessRef | None = None) -> Process:
        return Process(
            entity_id=self.entity_id,
            pid=self.pid,
            start=self.start,
            executable=self.executable,
            name=self.name,
            args=tuple(self.command_line.split()),
            command_line=self.command_line,
            working_directory=self.cwd,
            user=self.user,
            parent=parent,
        )

    def as_reference(self) -> ProcessRef:
        return ProcessRef(
            entity_id=self.entity_id,
            pid=self.pid,
            executable=self.executable,
            command_line=self.command_line,
        )


class ProcessTable:
    """pid -> :class:`ProcessState` for one host and boot."""

    def __init__(self, host: HostContext, *, capacity: int = 200_000) -> None:
        self._host = host
        self._by_pid: BoundedMap[int, ProcessState] = BoundedMap(capacity)
        self._by_command: BoundedMap[str, int] = BoundedMap(capacity)
        self._exited: BoundedMap[int, bool] = BoundedMap(capacity)

    @property
    def evictions(self) -> int:
        return self._by_pid.evictions

    def get(self, pid: int) -> ProcessState | None:
        return self._by_pid.get(pid)

    def seen(self, pid: int, *, at: int) -> ProcessState:
        """The process now holding ``pid``; first sight of it starts it at ``at``."""
        state = self._by_pid.get(pid)
        if state is None:
            state = self._new(pid, at)
        return state

    def forked(self, pid: int, *, at: int) -> ProcessState:
        """A fork created ``pid`` at ``at``: a new process, whatever held the pid before."""
        state = self._new(pid, at)
        state.from_fork = True
        return state

    def exited(self, pid: int) -> None:
        """``pid`` is gone; a later exit record for it (exit_group, then procexit) is a repeat."""
        self._by_pid.pop(pid)
        self._exited.put(pid, True)

    def has_exited(self, pid: int) -> bool:
        return self._by_pid.get(pid) is None and self._exited.get(pid) is not None

    def executed(self, state: ProcessState) -> None:
        """``state`` exec'd its current command line: pid-less rows with it are this process."""
        if state.command_line:
            self._by_command.put(state.command_line, state.pid)

    def by_command_line(self, command_line: str) -> int | None:
        return self._by_command.get(command_line) if command_line else None

    def _new(self, pid: int, at: int) -> ProcessState:
        entity = process_entity_id(
            host_id=self._host.id, boot_id=self._host.boot_id, pid=pid, start=at
        )
        state = ProcessState(pid=pid, start=at, entity_id=entity)
        self._by_pid.put(pid, state)
        self._exited.pop(pid)
        return state
