"""Map one coalesced audit event (a group of records with its SYSCALL) to canonical events.

The syscall name selects a handler (``HANDLERS``); syscalls without one are counted in
``report.skipped`` as ``syscall:NAME``. The acting process comes from the
:class:`ProcessTable`.

clone3 needs care: its flags live in user memory, so the record cannot say whether it made a
thread (pthread_create) or a process (posix_spawn). Its child is therefore parked, and the
fork event is emitted when that pid is first seen acting as a process; a thread's id never
appears as a pid (records name the thread group), so parked threads age out unseen.
"""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.model.errors import ParseError
from provarmor.model.event import Event
from provarmor.sources.auditd import file_actions, net_actions, process_actions
from provarmor.sources.auditd.coalescer import AuditGroup
from provarmor.sources.auditd.context import EventFactory, Handler, SyscallContext
from provarmor.sources.auditd.process_table import ProcessTable
from provarmor.sources.auditd.syscalls import syscall_name
from provarmor.sources.base import HostContext, IngestReport

HANDLERS: dict[str, Handler] = {
    "execve": process_actions.execve,
    "execveat": process_actions.execve,
    "clone": process_actions.clone,
    "fork": process_actions.fork,
    "vfork": process_actions.fork,
    "exit_group": process_actions.exit_group,
    "exit": process_actions.thread_exit,
    "open": file_actions.open_file,
    "openat": file_actions.open_file,
    "openat2": file_actions.open_file,
    "creat": file_actions.open_file,
    "unlink": file_actions.delete,
    "unlinkat": file_actions.delete,
    "rmdir": file_actions.delete,
    "rename": file_actions.rename,
    "renameat": file_actions.rename,
    "renameat2": file_actions.rename,
    "link": file_actions.link,
    "linkat": file_actions.link,
    "symlink": file_actions.symlink,
    "symlinkat": file_actions.symlink,
    "chmod": file_actions.chmod,
    "fchmod": file_actions.chmod,
    "fchmodat": file_actions.chmod,
    "fchmodat2": file_actions.chmod,
    "chown": file_actions.chown,
    "fchown": file_actions.chown,
    "lchown": file_actions.chown,
    "fchownat": file_actions.chown,
    "truncate": file_actions.truncate,
    "ftruncate": file_actions.truncate,
    "socket": net_actions.socket,
    "connect": net_actions.connect,
    "accept": net_actions.accept,
    "accept4": net_actions.accept,
    "bind": net_actions.bind,
    "listen": net_actions.listen,
    "sendto": net_actions.send,
    "sendmsg": net_actions.send,
    "recvfrom": net_actions.recv,
    "recvmsg": net_actions.recv,
    "setuid": process_actions.setuid,
    "setreuid": process_actions.setuid,
    "setresuid": process_actions.setuid,
    "setgid": process_actions.setgid,
    "setregid": process_actions.setgid,
    "setresgid": process_actions.setgid,
    "ptrace": process_actions.ptrace,
    "kill": process_actions.kill,
    "tkill": process_actions.kill,
    "tgkill": process_actions.kill,
    "init_module": process_actions.module_load,
    "finit_module": process_actions.module_load,
    "memfd_create": process_actions.memfd_create,
    "mmap": process_actions.mmap,
    "mprotect": process_actions.mprotect,
}
"""syscall name -> handler. clone3 is handled by the mapper itself (see module doc)."""

FORK_SYSCALLS = frozenset({"clone", "fork", "vfork"})
DEFAULT_PENDING = 4096
"""clone3 children parked at most; the oldest (most likely threads) are dropped first."""


@dataclass(slots=True)
class _Pending:
    ctx: SyscallContext


class AuditMapper:
    """Stateful: holds the process table and the parked clone3 children. One per stream."""

    def __init__(
        self,
        *,
        host: HostContext,
        report: IngestReport,
        source: str = "",
        table: ProcessTable | None = None,
        pending_capacity: int = DEFAULT_PENDING,
    ) -> None:
        self.table = table or ProcessTable(host_id=host.id, boot_id=host.boot_id)
        self.factory = EventFactory(host=host, source=source, report=report)
        self.report = report
        self._pending: dict[int, _Pending] = {}
        self._pending_capacity = pending_capacity
        self._names: dict[tuple[str, str], str] = {}

    def map_group(self, group: AuditGroup) -> list[Event]:
        """The canonical events of one group (none when its syscall is not mapped).

        Raises :class:`ParseError` (naming the SYSCALL record's line) for a group whose
        records lack what its syscall needs.
        """
        record = group.syscall
        if record is None:
            self.report.skipped["incomplete_event"] += 1
            return []
        fields = record.fields
        if "syscall" not in fields or "pid" not in fields:
            location = f"{self.factory.source}:{record.line}"
            raise ParseError("SYSCALL record without syscall= or pid=", location=location)
        key = (fields.get("arch", ""), fields["syscall"])
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = syscall_name(*key)
        handler = HANDLERS.get(name)
        if handler is None and name != "clone3":
            self.report.skipped[f"syscall:{name}"] += 1
            return []
        try:
            return self._dispatch(group, fields, name, handler)
        except (ValueError, KeyError, IndexError, OverflowError) as exc:
            # A hostile or truncated record can lack any field or hold any text in it;
            # handlers read fields directly and this turns the slip into the record's error.
            location = f"{self.factory.source}:{record.line}"
            raise ParseError(f"bad {name} event: {exc!s:.80}", location=location) from None

    def _dispatch(
        self, group: AuditGroup, fields: dict[str, str], name: str, handler: Handler | None
    ) -> list[Event]:
        pid = int(fields["pid"])
        parked = self._pending.pop(pid, None)
        events = process_actions.fork(parked.ctx) if parked is not None else []
        ctx = SyscallContext(
            group=group,
            fields=fields,
            syscall=name,
            pid=pid,
            state=self.table.lookup(pid, ppid=int(fields.get("ppid", "0"))),
            table=self.table,
            factory=self.factory,
            success=fields.get("success") != "no",
            result=int(fields.get("exit", "0")),
        )
        if handler is None:  # clone3
            self._park(ctx)
            return events
        events += handler(ctx)
        if name in FORK_SYSCALLS and ctx.success:
            self._pending.pop(ctx.result, None)
        return events

    def _park(self, ctx: SyscallContext) -> None:
        if not ctx.success or ctx.result <= 0:
            self.report.skipped["clone3_failed"] += 1
            return
        self.factory.process(ctx)  # the parent as it was at clone time
        self._pending.pop(ctx.result, None)
        self._pending[ctx.result] = _Pending(ctx)
        if len(self._pending) > self._pending_capacity:
            del self._pending[next(iter(self._pending))]
            self.report.skipped["clone3_unresolved"] += 1

    def flush(self) -> None:
        """End of input: parked clone3 children never seen acting were threads (or
        processes that did nothing audited)."""
        if self._pending:
            self.report.skipped["clone3_unresolved"] += len(self._pending)
            self._pending.clear()
