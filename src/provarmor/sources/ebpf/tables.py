"""What the eBPF decoder remembers about live processes (pure state, no I/O).

Records from the kernel carry only pid and start time; the table adds what an event should
show about its process (program, argv, cwd, ids, container), the paths behind its file
descriptors (to resolve ``openat(dirfd, ...)``, ``fchmod``, ``mmap``) and the two ends of its
sockets (for aggregated send/recv). It is filled by fork/exec/chdir/setuid records and seeded
from ``/proc`` (:mod:`provarmor.sources.procfs`) when the sensor starts. Each process is
looked up by pid AND start time, so a recycled pid never inherits another process's state.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from provarmor.model.event import Container, Endpoint, Process, ProcessRef
from provarmor.model.ids import process_entity_id
from provarmor.sources.procfs import HostIdentity, ProcessInfo
from provarmor.sources.running import canonical_process

MAX_FDS_PER_PROCESS = 256
"""Remembered fd paths per process; the oldest are forgotten first."""
MAX_PROCESSES = 65536
"""Remembered processes; beyond this the oldest entries are dropped (their exit was lost)."""
AT_FDCWD = -100


@dataclass(frozen=True, slots=True)
class Peer:
    """Both ends of a socket, as the kernel reported them."""

    transport: str
    local: Endpoint | None
    remote: Endpoint | None


@dataclass(slots=True, kw_only=True)
class ProcState:
    """One process as the decoder knows it."""

    pid: int
    start: int
    entity_id: str
    ppid: int = 0
    executable: str = ""
    comm: str = ""
    args: tuple[str, ...] = ()
    cwd: str = ""
    uid: int = -1
    euid: int = -1
    egid: int = -1
    container: Container | None = None
    creator: ProcessRef | None = None
    """The process that forked this one, when its fork was seen (the kernel's parent
    changes to init or a subreaper when the creator exits; this does not)."""
    forked_ns: int = 0
    """Record time of its fork (0: not seen)."""
    tty: str = ""
    """Its controlling terminal (the kernel's name, ``pts0``) at its last exec; inherited
    at fork; empty: none, or not known."""
    own: bool = False
    """In ProvArmor's own cgroup (an ``L`` record, or ``/proc`` at start); never inherited
    here: the kernel's cgroup at the child's own fork record decides."""
    fds: dict[int, str] = field(default_factory=dict)
    peers: dict[int, Peer] = field(default_factory=dict)
    _process: Process | None = None

    def process(self) -> Process:
        """The ``process`` of this process's events (built once per state change)."""
        if self._process is None:
            self._process = canonical_process(self, entity_id=self.entity_id)
        return self._process

    def ref(self) -> ProcessRef:
        return ProcessRef(
            entity_id=self.entity_id,
            pid=self.pid,
            executable=self.executable,
            command_line=" ".join(self.args),
        )

    def changed(self) -> None:
        """Forget the cached :class:`Process` after a field changed."""
        self._process = None

    def remember_fd(self, fd: int, path: str) -> None:
        self.fds.pop(fd, None)
        self.fds[fd] = path
        if len(self.fds) > MAX_FDS_PER_PROCESS:
            del self.fds[next(iter(self.fds))]

    def resolve(self, path: str, dirfd: int = AT_FDCWD) -> str:
        """``path`` made absolute against ``dirfd`` (or the cwd), when we know them.

        An empty path names the descriptor itself (``fchmod``, ``AT_EMPTY_PATH``); an
        unknown descriptor is shown as ``/proc/PID/fd/N``.
        """
        if path.startswith("/"):
            return posixpath.normpath(path) if "/." in path or "//" in path else path
        if dirfd == AT_FDCWD:
            base = self.cwd
        else:
            base = self.fds.get(dirfd, f"/proc/{self.pid}/fd/{dirfd}")
        if not path:
            return base or path
        if not base.startswith("/"):
            return path
        return posixpath.normpath(posixpath.join(base, path))


@dataclass(slots=True)
class ProcessTable:
    """Live processes by pid, each checked against its start time on lookup."""

    host: HostIdentity
    by_pid: dict[int, ProcState] = field(default_factory=dict)
    retired: dict[tuple[int, int], tuple[int, ProcState]] = field(default_factory=dict)
    """Exited processes, kept until a deadline: their last socket counts are flushed by the
    kernel after the exit record. ``(pid, start) -> (deadline ns, state)``."""
    late_forks: int = 0
    """Processes whose program was filled in after their own records had gone out without
    it (their fork arrived late, or their parent's did)."""

    def new_state(self, pid: int, start: int) -> ProcState:
        entity = process_entity_id(
            host_id=self.host.id, boot_id=self.host.boot_id, pid=pid, start=start
        )
        return ProcState(pid=pid, start=start, entity_id=entity)

    def get(self, pid: int, start: int) -> ProcState:
        """The state of process ``(pid, start)``, created empty when unknown."""
        state = self.by_pid.get(pid)
        if state is None or state.start != start:
            retired = self.retired.get((pid, start))
            if retired is not None:
                return retired[1]
            state = self.new_state(pid, start)
            self.put(state)
        return state

    def find(self, pid: int) -> ProcState | None:
        """The current process with this pid, if known (ptrace targets name only a pid)."""
        return self.by_pid.get(pid)

    def latest(self, pid: int) -> ProcState | None:
        """The current process with this pid, or else the last one that exited (kept until
        its deadline)."""
        state = self.by_pid.get(pid)
        if state is not None:
            return state
        for (retired_pid, _start), (_until, retired) in reversed(self.retired.items()):
            if retired_pid == pid:
                return retired
        return None

    def put(self, state: ProcState) -> None:
        self.by_pid.pop(state.pid, None)
        self.by_pid[state.pid] = state
        if len(self.by_pid) > MAX_PROCESSES:
            del self.by_pid[next(iter(self.by_pid))]

    def retire(self, state: ProcState, *, until: int) -> None:
        """The process exited: keep its state for late records until ``until`` (ns)."""
        if self.by_pid.get(state.pid) is state:
            del self.by_pid[state.pid]
        self.retired[(state.pid, state.start)] = (until, state)
        if len(self.retired) > MAX_PROCESSES:
            del self.retired[next(iter(self.retired))]

    def purge(self, now: int) -> None:
        """Forget exited processes whose deadline has passed."""
        due = [key for key, (until, _state) in self.retired.items() if until < now]
        for key in due:
            del self.retired[key]

    def seed(self, info: ProcessInfo) -> ProcState | None:
        """Add a process read from ``/proc``, unless a record already told us about it
        (then ``None``); one that records only named (created empty, its program unknown:
        a parent a fork record named) is filled in, what it learnt kept."""
        current = self.by_pid.get(info.pid)
        if current is not None and current.start == info.start:
            if not _unknown_program(current):
                return None
            state = current
        else:
            state = self.new_state(info.pid, info.start)
        state.ppid = info.ppid
        state.executable = info.executable
        state.comm = info.comm
        state.args = info.args
        state.cwd = info.cwd
        state.uid, state.euid, state.egid = info.uid, info.euid, info.egid
        state.container = info.container
        state.own = info.own
        state.tty = info.tty
        state.changed()
        if state is not current:
            self.put(state)
        return state

    def fork(self, parent: ProcState, pid: int, start: int, comm: str, *, at: int = 0) -> ProcState:
        """The state of a new child: program, argv, cwd, ids, container and fds inherited.

        It is stored unless the table already knows the child: its exec, recorded on
        another CPU, can arrive before its fork, and is newer. A state that other records
        created empty (no program known yet: its fork arrived late) is filled in instead,
        and so are the children it had meanwhile, which inherited nothing from it
        (:attr:`late_forks` counts these). ``at`` is the record time of the fork."""
        child = self.new_state(pid, start)
        _inherit(child, parent, comm)
        child.forked_ns = at
        known = self.by_pid.get(pid)
        if known is None or known.start != start:
            retired = self.retired.get((pid, start))  # it exited before its fork came
            known = retired[1] if retired is not None else None
        if known is None:
            self.put(child)
            return child
        child.own = known.own  # its own records (``L``) came first: the kernel's word
        known.forked_ns = at
        if known.creator is None:
            known.creator = child.creator
        if _unknown_program(known):
            _fill(known, parent, comm)
            self.late_forks += 1 + self._fill_children(known)
        return child

    def _fill_children(self, parent: ProcState) -> int:
        """Fill in the children (and theirs) that were forked while ``parent``'s program was
        unknown; how many."""
        filled = 0
        waiting = [parent]
        while waiting:
            current = waiting.pop()
            exited = [state for _until, state in self.retired.values()]
            for state in [*self.by_pid.values(), *exited]:
                creator = state.creator
                if creator is None or creator.entity_id != current.entity_id:
                    continue
                if state is not current and _unknown_program(state):
                    _fill(state, current, state.comm)
                    filled += 1
                    waiting.append(state)
        return filled


def _unknown_program(state: ProcState) -> bool:
    return not state.executable and not state.args


def _fill(state: ProcState, parent: ProcState, comm: str) -> None:
    """Inherit into a state that records created before its fork: what it learnt on its
    own (working directory, descriptors) stays."""
    fds, cwd = state.fds, state.cwd
    _inherit(state, parent, comm)
    state.cwd = cwd or state.cwd
    state.fds.update(fds)
    state.changed()


def _inherit(child: ProcState, parent: ProcState, comm: str) -> None:
    child.ppid = parent.pid
    child.creator = parent.ref()
    child.executable = parent.executable
    child.comm = comm or parent.comm
    child.args = parent.args
    child.cwd = parent.cwd
    child.uid, child.euid, child.egid = parent.uid, parent.euid, parent.egid
    child.container = parent.container
    child.tty = parent.tty
    child.fds = dict(parent.fds)
