"""Handlers for syscalls on files: open/create, delete, rename, link, chmod, chown, truncate.

Paths come from the PATH records (see :mod:`provarmor.sources.auditd.paths`); calls that
name a file by descriptor (fchmod, fchown, ftruncate) use the process's descriptor table.
"""

from __future__ import annotations

from provarmor.model.actions import Action
from provarmor.model.event import Event, File
from provarmor.sources.auditd.context import SyscallContext
from provarmor.sources.auditd.paths import PathItem, first_of
from provarmor.sources.owngroup import CGROUP_PROCS, moves_into_own_group

O_ACCMODE = 0o3
O_CREAT = 0o100
O_WRONLY_TRUNC_CREAT = 0o1101

_OPEN_LAYOUT: dict[str, tuple[int | None, int | None]] = {
    "open": (None, 1),
    "openat": (0, 2),
    "openat2": (0, None),
    "creat": (None, None),
}
"""syscall -> (argument holding the directory fd, argument holding the flags)."""


def open_file(ctx: SyscallContext) -> list[Event]:
    """open family -> ``create`` when a file was created, ``write`` when opened for writing,
    else ``open``. A successful open enters the descriptor in the process's table."""
    dirfd_arg, flags_arg = _OPEN_LAYOUT[ctx.syscall]
    flags = _open_flags(ctx, flags_arg)
    items = ctx.paths()
    item = first_of(items, "CREATE") or _first_named(items)
    if item is None:
        return ctx.skip("no_path")
    path = ctx.absolute(item.name, dirfd_arg=dirfd_arg, parent=first_of(items, "PARENT"))
    if item.nametype == "CREATE":
        action = Action.CREATE
    elif flags & O_ACCMODE:
        action = Action.WRITE
    else:
        action = Action.OPEN
    if ctx.success and ctx.result >= 0:
        ctx.state.set_fd(ctx.result, path)
        ctx.factory.directories.learn(item, path)
        if flags & O_ACCMODE and path.endswith(CGROUP_PROCS):
            _moved(ctx, moves_into_own_group(path))
    return [ctx.factory.event(ctx, action, file=item.to_file(path))]


def _moved(ctx: SyscallContext, own: bool) -> None:
    """The process opened a cgroup's ``cgroup.procs`` to move itself there (how ProvArmor's
    own commands enter their group and its lab jails leave it): its events carry the mark
    from this one on (``up`` and the lab fork their helpers and victims after the move)."""
    state = ctx.state
    if state.own != own:
        state.own = own
        state.invalidate()


def _open_flags(ctx: SyscallContext, flags_arg: int | None) -> int:
    if flags_arg is not None:
        return ctx.arg(flags_arg)
    if ctx.syscall == "creat":
        return O_WRONLY_TRUNC_CREAT
    record = ctx.first("OPENAT2")
    oflag = record.fields.get("oflag", "0") if record is not None else "0"
    try:
        return int(oflag, 8)
    except ValueError:
        return 0


def delete(ctx: SyscallContext) -> list[Event]:
    """unlink/unlinkat/rmdir -> delete of the DELETE item."""
    items = ctx.paths()
    item = first_of(items, "DELETE") or _first_named(items)
    if item is None:
        return ctx.skip("no_path")
    dirfd_arg = 0 if ctx.syscall == "unlinkat" else None
    path = ctx.absolute(item.name, dirfd_arg=dirfd_arg, parent=first_of(items, "PARENT"))
    return [ctx.factory.event(ctx, Action.DELETE, file=item.to_file(path))]


def rename(ctx: SyscallContext) -> list[Event]:
    """rename family: ``original_path`` from the DELETE item, ``path`` from the CREATE item
    (a second DELETE item, the overwritten target, is ignored)."""
    items = ctx.paths()
    new = first_of(items, "CREATE")
    if new is None:
        return ctx.skip("no_path")
    deleted = [item for item in items if item.nametype == "DELETE"]
    old = next((item for item in deleted if item.name != new.name), None) or (
        deleted[0] if deleted else None
    )
    if old is None:
        return ctx.skip("no_path")
    at = ctx.syscall != "rename"
    old_path = ctx.absolute(old.name, dirfd_arg=0 if at else None)
    new_path = ctx.absolute(new.name, dirfd_arg=2 if at else None)
    return [
        ctx.factory.event(ctx, Action.RENAME, file=new.to_file(new_path, original_path=old_path))
    ]


def link(ctx: SyscallContext) -> list[Event]:
    """link/linkat (hard link): ``original_path`` is the existing file, ``path`` the new name."""
    items = ctx.paths()
    new = first_of(items, "CREATE")
    old = first_of(items, "NORMAL", "UNKNOWN")
    if new is None or old is None:
        return ctx.skip("no_path")
    at = ctx.syscall == "linkat"
    old_path = ctx.absolute(old.name, dirfd_arg=0 if at else None)
    new_path = ctx.absolute(new.name, dirfd_arg=2 if at else None)
    return [ctx.factory.event(ctx, Action.LINK, file=new.to_file(new_path, original_path=old_path))]


def symlink(ctx: SyscallContext) -> list[Event]:
    """symlink/symlinkat: ``original_path`` is the link's target text (resolved against the
    link's directory when relative), ``path`` the new link."""
    items = ctx.paths()
    new = first_of(items, "CREATE")
    target = first_of(items, "UNKNOWN")
    if new is None:
        return ctx.skip("no_path")
    new_path = ctx.absolute(new.name, dirfd_arg=1 if ctx.syscall == "symlinkat" else None)
    original = ""
    if target is not None:
        link_dir = new_path.rpartition("/")[0] if new_path.startswith("/") else ""
        original = target.name if target.name.startswith("/") else f"{link_dir}/{target.name}"
    return [ctx.factory.event(ctx, Action.LINK, file=new.to_file(new_path, original_path=original))]


_BY_FD = frozenset({"fchmod", "fchown", "ftruncate"})
_MODE_ARG = {"chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2}


def chmod(ctx: SyscallContext) -> list[Event]:
    """chmod family: ``file.mode`` is the new permission bits."""
    mode = ctx.arg(_MODE_ARG[ctx.syscall]) & 0o7777
    return _attribute_change(ctx, Action.CHMOD, mode=mode)


def chown(ctx: SyscallContext) -> list[Event]:
    """chown family: ``file.uid``/``file.gid`` are the new owner (as recorded when -1)."""
    uid_arg = 2 if ctx.syscall == "fchownat" else 1
    uid, gid = ctx.arg32(uid_arg), ctx.arg32(uid_arg + 1)
    return _attribute_change(
        ctx, Action.CHOWN, uid="" if uid == -1 else str(uid), gid="" if gid == -1 else str(gid)
    )


def truncate(ctx: SyscallContext) -> list[Event]:
    return _attribute_change(ctx, Action.TRUNCATE)


def _attribute_change(
    ctx: SyscallContext, action: Action, *, mode: int | None = None, uid: str = "", gid: str = ""
) -> list[Event]:
    if ctx.syscall in _BY_FD:
        path = ctx.fd_path(ctx.arg32(0))
        if not path:
            return ctx.skip("fd_unresolved")
        file = File(path=path, mode=mode, uid=uid, gid=gid)
        return [ctx.factory.event(ctx, action, file=file)]
    item = _first_named(ctx.paths())
    if item is None:
        return ctx.skip("no_path")
    dirfd_arg = 0 if ctx.syscall.endswith("at") or ctx.syscall == "fchmodat2" else None
    file = item.to_file(ctx.absolute(item.name, dirfd_arg=dirfd_arg), mode=mode)
    if uid or gid:
        file = File(
            path=file.path,
            type=file.type,
            mode=file.mode,
            inode=file.inode,
            uid=uid or file.uid,
            gid=gid or file.gid,
        )
    return [ctx.factory.event(ctx, action, file=file)]


def _first_named(items: list[PathItem]) -> PathItem | None:
    """The first item that is not a PARENT directory."""
    for item in items:
        if item.nametype != "PARENT":
            return item
    return None
