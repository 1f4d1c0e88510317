"""Turning one sysdig record into a canonical :class:`Event`, or the reason it is skipped.

Mapping rules (the ``Action`` docstring in model/actions.py is the contract):

* Exit (``<``) events carry the result and, since sysdig resolves them, the paths and
  tuples; enter (``>``) events are skipped as ``enter_event``, except ``procexit``,
  ``exit`` and ``exit_group``, which have no exit half.
* ``clone``/``fork``/``vfork``/``clone3``: the parent's record (``res`` = child pid) makes the
  ``fork`` event whose ``process`` is the new child; the child's own record (``res=0``) is
  only used when the parent's was not seen. ``CLONE_THREAD`` clones are threads, skipped.
* ``execve``: same entity, new program; ``file.path`` the program run.
* ``open*``: ``create`` with ``O_F_CREATED``, ``write`` when opened for writing, else ``open``.
* ``read``/``write`` families: ``read``/``write`` on files and pipes, ``recv``/``send`` on
  sockets; other descriptors (eventfd, signalfd ...) are skipped.
* Network: ``destination`` is the remote peer (see :mod:`provarmor.sources.sysdig.sockets`).

Relative paths are resolved against the process's working directory (``proc.cwd``, the
``cwd=`` of its exec or clone, or its last ``chdir``) when known.

The handlers stay in one module (a little over 400 lines) because they share the draft type
and are all listed in the one dispatch table at the bottom, which reads as the mapping.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from provarmor.model.actions import Action
from provarmor.model.event import (
    Event,
    EventInfo,
    File,
    Host,
    LogRef,
    ProcessRef,
    Target,
    User,
)
from provarmor.sources.sysdig.fields import SysdigRecord, to_int
from provarmor.sources.sysdig.network import network_parts
from provarmor.sources.sysdig.processes import MAX_PID, ProcessState, ProcessTable
from provarmor.sources.sysdig.sockets import fd_kind

EXIT_TYPES = frozenset({"procexit", "exit", "exit_group"})
EINPROGRESS = -115


@dataclass(frozen=True, slots=True)
class Draft:
    """One record on its way to an event, with the process table it updates."""

    record: SysdigRecord
    table: ProcessTable
    host: Host
    log: LogRef

    def event(self, action: Action, process: ProcessState, **parts: object) -> Event:
        info = EventInfo(
            action=action,
            id=self.log.record or f"{self.log.file}:{self.log.line}",
            sequence=self.log.line,
            outcome=outcome(self.record),
            dataset="sysdig",
        )
        return Event(
            timestamp=self.record.timestamp,
            event=info,
            host=self.host,
            process=process.as_process(self.parent_of(process)),
            log=self.log,
            **parts,  # type: ignore[arg-type]
        )

    def actor(self, pid: int) -> ProcessState:
        """The acting process, refreshed with what this record says about it."""
        state = self.table.seen(pid, at=self.record.timestamp)
        refresh(state, self.record, self.table)
        return state

    def parent_of(self, state: ProcessState) -> ProcessRef | None:
        if state.ppid:
            parent = self.table.get(state.ppid)
            return parent.as_reference() if parent is not None else None
        return None


Handler = Callable[[Draft, int], "Event | str"]


def build_event(
    record: SysdigRecord, *, table: ProcessTable, host: Host, log: LogRef
) -> Event | str:
    """The canonical event for ``record``, or the ``report.skipped`` reason."""
    if record.direction == ">" and record.type not in EXIT_TYPES:
        return "enter_event"
    handler = HANDLERS.get(record.type)
    if handler is None:
        return "unmapped:" + record.type
    pid = acting_pid(record, table)
    if pid is None:
        return "no_pid"
    return handler(Draft(record, table, host, log), pid)


def acting_pid(record: SysdigRecord, table: ProcessTable) -> int | None:
    """``proc.pid``, else ``thread.tid``, else ``pid=`` in the args of execve/clone, else the
    process that exec'd this ``proc.cmdline``."""
    for value in (record.number("proc.pid"), record.number("thread.tid")):
        if value is not None and 0 < value <= MAX_PID:
            return value
    value = to_int(record.args.get("pid", ""))
    if value is not None and 0 < value <= MAX_PID and record.type in _PROCESS_TYPES:
        return value
    return table.by_command_line(record.text("proc.cmdline"))


def refresh(state: ProcessState, record: SysdigRecord, table: ProcessTable) -> None:
    """Copy the process fields of ``record`` into ``state`` (they describe it now)."""
    state.name = record.text("proc.name") or state.name
    state.command_line = record.text("proc.cmdline") or state.command_line
    state.executable = executable_of(record) or state.executable
    state.cwd = record.text("proc.cwd") or _cwd_arg(record) or state.cwd
    ppid = record.number("proc.ppid") or to_int(record.args.get("ptid", "")) or 0
    if 0 < ppid <= MAX_PID and ppid != state.pid:
        state.ppid = ppid
    elif not state.ppid:
        state.ppid = table.by_command_line(record.text("proc.pcmdline")) or 0
    uid = record.text("user.uid")
    if uid or record.text("user.name"):
        state.user = User(id=uid, name=record.text("user.name"))
    if state.ppid:
        parent = table.seen(state.ppid, at=record.timestamp)
        parent.command_line = parent.command_line or record.text("proc.pcmdline")
        parent.name = parent.name or record.text("proc.pname")


def executable_of(record: SysdigRecord) -> str:
    for text in (record.text("proc.exepath"), record.text("proc.exe")):
        if text.startswith("/"):
            return text
    return ""


def _cwd_arg(record: SysdigRecord) -> str:
    cwd = record.args.get("cwd", "")
    return cwd if cwd.startswith("/") else ""


def result(record: SysdigRecord) -> int | None:
    """The syscall's return value: ``evt.rawres``, ``res=``, or ``fd=`` for fd-returning calls."""
    for value in (record.number("evt.rawres"), to_int(record.args.get("res", ""))):
        if value is not None:
            return value
    if record.type.startswith(("open", "accept", "creat", "socket")):
        return to_int(record.args.get("fd", ""))
    return None


def outcome(record: SysdigRecord) -> str:
    """``failure`` for a negative result, ``unknown`` for EINPROGRESS or no result at all.

    Process exit has no result (``status`` is the exit code, not an error): ``success``.
    """
    if record.type in EXIT_TYPES:
        return "success"
    value = result(record)
    if value is None:
        text = record.text("evt.res")
        if text == "SUCCESS":
            return "success"
        return "failure" if text.startswith("E") else "unknown"
    if value == EINPROGRESS:
        return "unknown"
    return "failure" if value < 0 else "success"


def _on_exec(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    state = draft.actor(pid)
    program = _first_absolute(record.args.get("filename", ""), record.args.get("exe", ""))
    program = program or state.executable
    if outcome(record) != "failure":
        state.executable = program or state.executable
        draft.table.executed(state)
    path = program or record.args.get("filename", "")
    return draft.event(Action.EXEC, state, file=File(path=path) if path else None)


def _on_fork(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    if "CLONE_THREAD" in record.args.get("flags", ""):
        return "thread_clone"
    child_pid = result(record)
    if child_pid is None:
        return "clone_without_result"
    if child_pid < 0:
        return draft.event(Action.FORK, draft.actor(pid))
    if child_pid == 0:
        return _child_side_fork(draft, pid)
    if child_pid > MAX_PID:
        return "clone_without_result"
    parent = draft.actor(pid)
    child = draft.table.forked(child_pid, at=record.timestamp)
    _inherit(child, parent)
    return draft.event(Action.FORK, child)


def _child_side_fork(draft: Draft, pid: int) -> Event | str:
    known = draft.table.get(pid)
    if known is not None and known.from_fork:
        known.from_fork = False
        return "clone_child_side"
    child = draft.table.forked(pid, at=draft.record.timestamp)
    refresh(child, draft.record, draft.table)
    return draft.event(Action.FORK, child)


def _inherit(child: ProcessState, parent: ProcessState) -> None:
    child.ppid = parent.pid
    child.executable = parent.executable
    child.name = parent.name
    child.command_line = parent.command_line
    child.cwd = parent.cwd
    child.user = parent.user


def _on_exit(draft: Draft, pid: int) -> Event | str:
    tid = draft.record.number("thread.tid")
    if tid is not None and tid != pid and draft.record.text("proc.pid"):
        return "thread_exit"
    if draft.table.has_exited(pid):
        return "duplicate_exit"
    state = draft.actor(pid)
    event = draft.event(Action.EXIT, state)
    draft.table.exited(pid)
    return event


_OPEN_FOR_WRITING = re.compile(r"\bO_(WRONLY|RDWR|TRUNC|APPEND)\b")


def _on_open(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    state = draft.actor(pid)
    path = _fd_path(record) or resolve(state, record.args.get("name", ""))
    if not path:
        return "file_without_path"
    flags = record.args.get("flags", "")
    action = Action.OPEN
    if "O_F_CREATED" in flags:
        action = Action.CREATE
    elif _OPEN_FOR_WRITING.search(flags) or record.type == "creat" or _numeric_write(flags):
        action = Action.WRITE
    kind = "dir" if "O_DIRECTORY" in flags or record.text("fd.typechar") == "d" else ""
    return draft.event(action, state, file=File(path=path, type=kind))


def _numeric_write(flags: str) -> bool:
    """Flags given only as a number (no names in parentheses): the access mode bits."""
    if "(" in flags:
        return False
    value = to_int(flags)
    return value is not None and value & 3 in (1, 2)


def _on_io(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    reading = record.type.startswith(("read", "pread", "recv"))
    kind = fd_kind(record)
    if kind in ("4", "6", "u"):
        return _on_network(draft, pid, Action.RECV if reading else Action.SEND)
    if kind not in ("f", "p"):
        return "io_other_fd"
    path = record.text("fd.name")
    if not path:
        return "file_without_path"
    state = draft.actor(pid)
    file = File(path=path, type="pipe" if kind == "p" else "")
    return draft.event(Action.READ if reading else Action.WRITE, state, file=file)


def _on_network(draft: Draft, pid: int, action: Action) -> Event | str:
    state = draft.actor(pid)
    parts = network_parts(draft.record, state, action)
    if isinstance(parts, str):
        return parts
    source, destination, network = parts
    return draft.event(action, state, source=source, destination=destination, network=network)


_PATH_KEYS = ("path", "name", "filename", "pathname")


def _on_path(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    action, kind = _PATH_ACTIONS[record.type]
    state = draft.actor(pid)
    path = ""
    for key in _PATH_KEYS:
        path = path or resolve(state, record.args.get(key, ""))
    path = path or _fd_path(record)
    if not path:
        return "file_without_path"
    return draft.event(action, state, file=File(path=path, type=kind))


def _on_two_paths(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    state = draft.actor(pid)
    old = resolve(state, record.args.get("oldpath", "") or record.args.get("target", ""))
    new = resolve(state, record.args.get("newpath", "") or record.args.get("linkpath", ""))
    if not (old and new):
        return "rename_without_paths"
    action = Action.RENAME if record.type.startswith("rename") else Action.LINK
    return draft.event(action, state, file=File(path=new, original_path=old))


def _on_chdir(draft: Draft, pid: int) -> Event | str:
    state = draft.actor(pid)
    path = resolve(state, draft.record.args.get("path", "")) or _fd_path(draft.record)
    if path and outcome(draft.record) == "success":
        state.cwd = path
    return "chdir"


def _on_identity(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    group = "gid" in record.type
    key = "gid" if group else "uid"
    value = to_int(record.args.get(key, "") or record.args.get("e" + key, ""))
    if value is None or value < 0:
        return "identity_without_id"
    action = Action.SETGID if group else Action.SETUID
    target = Target(user=User(id=str(value)))
    return draft.event(action, draft.actor(pid), target=target)


def _on_target(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    victim = to_int(record.args.get("pid", "") or record.args.get("tid", ""))
    if victim is None or not 0 < victim <= MAX_PID:
        return "signal_without_target"
    state = draft.actor(pid)
    target = draft.table.seen(victim, at=record.timestamp)
    action = Action.PTRACE if record.type == "ptrace" else Action.KILL
    return draft.event(action, state, target=Target(process=target.as_reference()))


def _on_memory(draft: Draft, pid: int) -> Event | str:
    record = draft.record
    if "PROT_EXEC" not in record.args.get("prot", ""):
        return f"{record.type}_not_exec"
    path = _fd_path(record)
    if not path:
        return f"{record.type}_without_file"
    return draft.event(Action.MMAP_EXEC, draft.actor(pid), file=File(path=path))


def _on_module(draft: Draft, pid: int) -> Event | str:
    path = _fd_path(draft.record) or draft.record.args.get("name", "") or "unknown-module"
    file = File(path=path, type="module")
    return draft.event(Action.MODULE_LOAD, draft.actor(pid), file=file)


def _on_memfd(draft: Draft, pid: int) -> Event | str:
    name = draft.record.args.get("name", "")
    file = File(path=f"memfd:{name}", type="memfd")
    return draft.event(Action.MEMFD_CREATE, draft.actor(pid), file=file)


def resolve(state: ProcessState, path: str) -> str:
    """``path`` made absolute against the working directory when it is relative and known."""
    path = path.strip()
    if not path or path == "NULL":
        return ""
    path = re.sub(r"\(.*\)$", "", path) if path.endswith(")") and "(" in path else path
    if path.startswith("/"):
        return posixpath.normpath(path)
    if state.cwd:
        return posixpath.normpath(posixpath.join(state.cwd, path))
    return path


def _fd_path(record: SysdigRecord) -> str:
    name = record.text("fd.name")
    if name.startswith("/"):
        return name
    match = re.match(r"^-?\d+\(<\w+>(/[^)]*)\)", record.args.get("fd", ""))
    return match[1] if match else ""


def _first_absolute(*texts: str) -> str:
    for text in texts:
        if text.startswith("/"):
            return text
    return ""


_PATH_ACTIONS: dict[str, tuple[Action, str]] = {
    **dict.fromkeys(("unlink", "unlinkat", "rmdir"), (Action.DELETE, "")),
    **dict.fromkeys(("chmod", "fchmod", "fchmodat"), (Action.CHMOD, "")),
    **dict.fromkeys(("chown", "lchown", "fchown", "fchownat"), (Action.CHOWN, "")),
    **dict.fromkeys(("truncate", "ftruncate"), (Action.TRUNCATE, "")),
    **dict.fromkeys(("mkdir", "mkdirat"), (Action.CREATE, "dir")),
}
_PROCESS_TYPES = frozenset({"execve", "execveat", "clone", "clone3", "fork", "vfork"})


def _network(action: Action) -> Handler:
    def handle(draft: Draft, pid: int) -> Event | str:
        return _on_network(draft, pid, action)

    return handle


HANDLERS: dict[str, Handler] = {
    "execve": _on_exec,
    "execveat": _on_exec,
    **dict.fromkeys(("clone", "clone3", "fork", "vfork"), _on_fork),
    **dict.fromkeys(EXIT_TYPES, _on_exit),
    **dict.fromkeys(("open", "openat", "openat2", "creat"), _on_open),
    **dict.fromkeys(
        ("read", "readv", "pread", "pread64", "preadv", "write", "writev", "pwrite", "pwrite64"),
        _on_io,
    ),
    **dict.fromkeys(_PATH_ACTIONS, _on_path),
    **dict.fromkeys(
        ("rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat"),
        _on_two_paths,
    ),
    "connect": _network(Action.CONNECT),
    **dict.fromkeys(("accept", "accept4"), _network(Action.ACCEPT)),
    "bind": _network(Action.BIND),
    "listen": _network(Action.LISTEN),
    **dict.fromkeys(("sendto", "sendmsg", "send", "sendmmsg"), _network(Action.SEND)),
    **dict.fromkeys(("recvfrom", "recvmsg", "recv", "recvmmsg"), _network(Action.RECV)),
    **dict.fromkeys(("chdir", "fchdir"), _on_chdir),
    **dict.fromkeys(
        ("setuid", "setreuid", "setresuid", "setgid", "setregid", "setresgid"), _on_identity
    ),
    **dict.fromkeys(("kill", "tkill", "tgkill", "ptrace"), _on_target),
    **dict.fromkeys(("mmap", "mmap2", "mprotect"), _on_memory),
    **dict.fromkeys(("init_module", "finit_module"), _on_module),
    "memfd_create": _on_memfd,
}
