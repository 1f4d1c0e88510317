"""Handlers for syscalls that change or act on processes: exec, fork, exit, setuid/setgid,
ptrace/kill, module loading, memfd_create and executable mmap.

Each follows the Action docstring in :mod:`provarmor.model.actions`: a fork's ``process`` is
the NEW child, an exec keeps the entity id, a kill's ``target.process`` is the victim.
"""

from __future__ import annotations

from msgspec.structs import replace

from provarmor.model.actions import Action
from provarmor.model.event import Event, File, ProcessRef, Target
from provarmor.sources.auditd.context import SyscallContext
from provarmor.sources.auditd.records import AuditRecord, decode_bytes

CLONE_THREAD = 0x10000
PROT_EXEC = 0x4
MAX_ARGS = 65536


def execve(ctx: SyscallContext) -> list[Event]:
    """exec: same entity, new program and arguments; ``file.path`` is the program run."""
    items = ctx.paths()
    dirfd_arg = 0 if ctx.syscall == "execveat" else None
    program = ctx.absolute(items[0].name, dirfd_arg=dirfd_arg) if items else ""
    file = items[0].to_file(program) if items and program else None
    if not ctx.success:
        return [ctx.factory.event(ctx, Action.EXEC, file=file)]
    state = ctx.state
    state.args = execve_args(ctx.records("EXECVE"), location=ctx.location)
    state.invalidate()
    cwd = ctx.cwd()
    process = ctx.factory.process(ctx)
    if cwd:
        process = replace(process, working_directory=cwd)
    return [ctx.factory.event(ctx, Action.EXEC, process=process, file=file)]


def execve_args(records: list[AuditRecord], *, location: str = "") -> tuple[str, ...]:
    """argv from the EXECVE record(s): ``argc``, ``aN`` and, for long arguments, the
    ``aN_len``/``aN[k]`` chunks. Stops at the first argument the records lack."""
    fields: dict[str, str] = {}
    for record in records:
        fields.update(record.fields)
    try:
        argc = min(int(fields.get("argc", "0")), MAX_ARGS)
    except ValueError:
        argc = MAX_ARGS
    args: list[str] = []
    for index in range(argc):
        value = fields.get(f"a{index}")
        if value is None:
            if f"a{index}_len" not in fields and f"a{index}[0]" not in fields:
                break
            value = _long_arg(fields, index, location=location)
        args.append(value)
    return tuple(args)


def _long_arg(fields: dict[str, str], index: int, *, location: str) -> str:
    """A long argument logged as ``aN[0]``, ``aN[1]``... chunks, each quoted or hex."""
    chunks: list[bytes] = []
    while (chunk := fields.get(f"a{index}[{len(chunks)}]")) is not None:
        chunks.append(decode_bytes(chunk, source=location))
    return b"".join(chunks).decode("utf-8", "backslashreplace")


def clone(ctx: SyscallContext) -> list[Event]:
    """clone: a fork unless it made a thread (CLONE_THREAD)."""
    if ctx.arg(0) & CLONE_THREAD:
        return ctx.skip("thread_clone")
    return fork(ctx)


def fork(ctx: SyscallContext, *, index: int = 0) -> list[Event]:
    """fork/vfork/clone: ``process`` is the new child (start = this event's time),
    ``process.parent`` the caller. A failed fork names the caller."""
    parent_process = ctx.factory.process(ctx)
    child_pid = ctx.result
    if not ctx.success or child_pid <= 0:
        return [ctx.factory.event(ctx, Action.FORK, index=index)]
    child = ctx.table.fork(ctx.state, child_pid, start=ctx.group.timestamp)
    process = replace(
        parent_process,
        entity_id=child.entity_id,
        pid=child_pid,
        start=child.start,
        parent=child.parent,
    )
    child.snapshot, child.snapshot_key = process, ctx.state.snapshot_key
    return [ctx.factory.event(ctx, Action.FORK, process=process, index=index)]


def exit_group(ctx: SyscallContext) -> list[Event]:
    """exit: the process ended; it leaves the process table."""
    events = [ctx.factory.event(ctx, Action.EXIT)]
    ctx.table.exit(ctx.pid)
    return events


def thread_exit(ctx: SyscallContext) -> list[Event]:
    """``exit`` ends one thread (records name the thread group), not the process."""
    return ctx.skip("thread_exit")


def setuid(ctx: SyscallContext) -> list[Event]:
    """setuid family: ``target.user`` is the new effective id (else real, else saved)."""
    return _set_identity(ctx, Action.SETUID, group=False)


def setgid(ctx: SyscallContext) -> list[Event]:
    return _set_identity(ctx, Action.SETGID, group=True)


def _set_identity(ctx: SyscallContext, action: Action, *, group: bool) -> list[Event]:
    ctx.factory.process(ctx)  # names the ids this record shows, the new one among them
    name = ctx.syscall
    order: tuple[int, ...]
    if name in ("setuid", "setgid"):
        order = (0,)
    elif name in ("setreuid", "setregid"):
        order = (1, 0)
    else:
        order = (1, 0, 2)
    for index in order:
        value = ctx.arg32(index)
        if value != -1:
            user = ctx.factory.cached_user(str(value), group=group)
            return [ctx.factory.event(ctx, action, target=Target(user=user))]
    return ctx.skip("set_identity_unchanged")


def ptrace(ctx: SyscallContext) -> list[Event]:
    """ptrace: ``target.process`` is the traced process (the parent for TRACEME)."""
    if ctx.arg(0) == 0:
        target = ctx.state.parent or ctx.table.ref(int(ctx.fields.get("ppid", "0")))
    else:
        target = _object_pid(ctx) or ctx.table.ref(ctx.arg32(1))
    return [ctx.factory.event(ctx, Action.PTRACE, target=Target(process=target))]


def kill(ctx: SyscallContext) -> list[Event]:
    """kill/tkill/tgkill: the target from the OBJ_PID record, else the pid argument (a
    process group or "everyone" when not positive, with no entity)."""
    target = _object_pid(ctx)
    if target is None:
        pid = ctx.arg32(0)
        target = ctx.table.ref(pid) if pid > 0 else ProcessRef(entity_id="", pid=pid)
    return [ctx.factory.event(ctx, Action.KILL, target=Target(process=target))]


def _object_pid(ctx: SyscallContext) -> ProcessRef | None:
    record = ctx.first("OBJ_PID")
    if record is None:
        return None
    opid = record.fields.get("opid", "")
    if not (opid.isascii() and opid.isdigit()) or len(opid) > 10:
        return None
    ref = ctx.table.ref(int(opid))
    if not ref.executable and record.fields.get("ocomm"):
        ref = replace(ref, executable=record.fields["ocomm"])
    return ref


def module_load(ctx: SyscallContext) -> list[Event]:
    """init_module/finit_module: the module file (finit_module's descriptor) or its name."""
    path = ctx.fd_path(ctx.arg32(0)) if ctx.syscall == "finit_module" else ""
    record = ctx.first("KERN_MODULE")
    if not path and record is not None:
        path = record.fields.get("name", "")
    file = File(path=path or "module:", type="module")
    return [ctx.factory.event(ctx, Action.MODULE_LOAD, file=file)]


def memfd_create(ctx: SyscallContext) -> list[Event]:
    """memfd_create: ``memfd:`` (the name is in user memory, which audit does not copy)."""
    path = "memfd:"
    if ctx.success and ctx.result >= 0:
        ctx.state.set_fd(ctx.result, path)
    return [ctx.factory.event(ctx, Action.MEMFD_CREATE, file=File(path=path, type="memfd"))]


def mmap(ctx: SyscallContext) -> list[Event]:
    """mmap with PROT_EXEC of a file whose descriptor the table knows -> mmap_exec."""
    if not ctx.arg(2) & PROT_EXEC:
        return ctx.skip("mmap_not_exec")
    record = ctx.first("MMAP")
    fd = record.fields.get("fd", "") if record is not None else ""
    if not (fd.isascii() and fd.isdigit()) or len(fd) > 10:
        return ctx.skip("mmap_anonymous")
    path = ctx.fd_path(int(fd))
    if not path:
        return ctx.skip("fd_unresolved")
    return [ctx.factory.event(ctx, Action.MMAP_EXEC, file=File(path=path))]


def mprotect(ctx: SyscallContext) -> list[Event]:
    """mprotect names no file (audit logs only the address), so it maps to nothing."""
    return ctx.skip("mprotect_exec")
