"""What every syscall handler works with: the event's SYSCALL fields and acting process
(:class:`SyscallContext`), and how a canonical :class:`Event` is assembled from them
(:class:`EventFactory`), including the per-process ``Process`` snapshot that is reused while
the process does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter

from provarmor.model.actions import Action
from provarmor.model.errors import ParseError
from provarmor.model.event import (
    Endpoint,
    Event,
    EventInfo,
    File,
    Host,
    LogRef,
    Network,
    Process,
    Target,
    User,
)
from provarmor.sources.auditd.coalescer import AuditGroup
from provarmor.sources.auditd.paths import DirectoryCache, PathItem, PathItemCache, resolve
from provarmor.sources.auditd.process_table import ProcessState, ProcessTable
from provarmor.sources.auditd.records import AuditRecord, decode_proctitle
from provarmor.sources.base import HostContext, IngestReport

AUDITD_KEPT_FIELDS = (
    "a0",
    "a1",
    "a2",
    "a3",
    "key",
    "exit",
    "success",
    "comm",
    "exe",
    "euid",
    "uid",
    "auid",
)
"""SYSCALL fields copied into ``Event.auditd`` (with ``type`` and ``syscall``)."""

_kept_values = itemgetter(*AUDITD_KEPT_FIELDS)
_UNSET_ID = "4294967295"
AT_FDCWD = -100


@dataclass(slots=True, kw_only=True)
class SyscallContext:
    """One syscall event being mapped."""

    group: AuditGroup
    fields: dict[str, str]
    """The SYSCALL record's fields."""
    syscall: str
    pid: int
    state: ProcessState
    table: ProcessTable
    factory: EventFactory
    success: bool
    """False only when the record says ``success=no`` (exit_group has no result)."""
    result: int
    """The ``exit`` value (the syscall's return value), 0 when absent."""

    @property
    def location(self) -> str:
        """``file:line`` of the SYSCALL record, for errors."""
        line = self.group.syscall.line if self.group.syscall is not None else self.group.line
        return f"{self.factory.source}:{line}" if line else self.factory.source

    def arg(self, index: int) -> int:
        """Argument ``a<index>`` as an unsigned register value."""
        value = self.fields.get(f"a{index}", "")
        try:
            return int(value, 16)
        except ValueError:
            raise ParseError(
                f"a{index}={value[:30]!r} is not hex", location=self.location
            ) from None

    def arg32(self, index: int) -> int:
        """Argument ``a<index>`` as a signed 32-bit int (fds, pids, uids given as -1)."""
        value = self.arg(index) & 0xFFFFFFFF
        return value - 0x100000000 if value & 0x80000000 else value

    def skip(self, reason: str) -> list[Event]:
        """Count this event as deliberately not mapped, and map it to nothing."""
        self.factory.report.skipped[reason] += 1
        return []

    def records(self, kind: str) -> list[AuditRecord]:
        return [record for record in self.group.records if record.type == kind]

    def first(self, kind: str) -> AuditRecord | None:
        for record in self.group.records:
            if record.type == kind:
                return record
        return None

    def paths(self) -> list[PathItem]:
        syscall = self.group.syscall
        line = syscall.line if syscall is not None else self.group.line
        return self.factory.path_items.items(
            self.group.records, source=self.factory.source, line=line
        )

    def cwd(self) -> str:
        record = self.first("CWD")
        return record.fields.get("cwd", "") if record is not None else ""

    def fd_path(self, fd: int) -> str:
        """The path descriptor ``fd`` was opened on ("" when unknown or a socket)."""
        target = self.state.fds.get(fd)
        return target if isinstance(target, str) else ""

    def absolute(
        self, name: str, *, dirfd_arg: int | None = None, parent: PathItem | None = None
    ) -> str:
        """``name`` from a PATH record made absolute: against the CWD record, or, when
        argument ``dirfd_arg`` is a directory descriptor (not AT_FDCWD), against the
        ``parent`` item's directory if an open of it was seen, else what the descriptor
        table says. A ``/proc/self/fd/N`` name becomes what descriptor N is, when known."""
        if name.startswith("/"):
            base = ""
        elif dirfd_arg is None or (dirfd := self.arg32(dirfd_arg)) == AT_FDCWD:
            base = self.cwd()
        else:
            base = self.factory.directories.get(parent) or self.fd_path(dirfd)
        path = resolve(name, base=base)
        if path.startswith(("/proc/", "/dev/fd/")):
            return self._proc_fd(path) or path
        return path

    def _proc_fd(self, path: str) -> str:
        head, _, number = path.rpartition("/")
        own = (f"/proc/{self.pid}/fd", "/proc/self/fd", "/dev/fd", "/proc/thread-self/fd")
        if head in own and number.isascii() and number.isdigit() and len(number) < 10:
            return self.fd_path(int(number))
        return ""


Handler = Callable[[SyscallContext], list[Event]]
"""Maps one syscall event to its canonical events (none when deliberately skipped)."""


class EventFactory:
    """Builds canonical events for one host and source file."""

    def __init__(self, *, host: HostContext, source: str, report: IngestReport) -> None:
        self.host = Host(id=host.id, name=host.name, boot_id=host.boot_id)
        self.host_id = host.id
        self.source = source
        self.report = report
        self._users: dict[tuple[str, str], User] = {}
        self.directories = DirectoryCache()
        self.path_items = PathItemCache()

    def event(  # noqa: PLR0913  (an event has this many optional parts)
        self,
        ctx: SyscallContext,
        action: Action,
        *,
        process: Process | None = None,
        file: File | None = None,
        source: Endpoint | None = None,
        destination: Endpoint | None = None,
        network: Network | None = None,
        target: Target | None = None,
        outcome: str = "",
        index: int = 0,
    ) -> Event:
        group = ctx.group
        fields = ctx.fields
        try:
            auditd = dict(zip(AUDITD_KEPT_FIELDS, _kept_values(fields), strict=False))
        except KeyError:  # exit_group has no exit/success; hostile records lack anything
            auditd = {name: fields[name] for name in AUDITD_KEPT_FIELDS if name in fields}
        auditd["type"] = "SYSCALL"
        auditd["syscall"] = ctx.syscall
        return Event(
            timestamp=group.timestamp,
            event=EventInfo(
                action=action,
                id=f"{self.host_id}:{group.stamp}:{index}",
                outcome=outcome or ("success" if ctx.success else "failure"),
                dataset="auditd",
            ),
            host=self.host,
            process=process if process is not None else self.process(ctx),
            file=file,
            source=source,
            destination=destination,
            network=network,
            target=target,
            log=LogRef(file=self.source, line=group.line, record=group.stamp),
            auditd=auditd,
        )

    def process(self, ctx: SyscallContext) -> Process:
        """The acting process as the record shows it, reusing the last snapshot when the
        program, name, ids and tty are unchanged."""
        fields = ctx.fields
        state = ctx.state
        key = (
            fields.get("exe", ""),
            fields.get("comm", ""),
            fields.get("euid", ""),
            fields.get("uid", ""),
            fields.get("egid", ""),
            fields.get("tty", ""),
            "own" if state.own else "",
        )
        if state.snapshot is not None and state.snapshot_key == key:
            return state.snapshot
        if state.args is None:
            state.args = self._proctitle_args(ctx)
        state.executable, state.name = key[0], key[1]
        snapshot = self.build_process(ctx, state, key)
        state.snapshot, state.snapshot_key = snapshot, key
        return snapshot

    def build_process(
        self, ctx: SyscallContext, state: ProcessState, key: tuple[str, ...]
    ) -> Process:
        args = state.args or ()
        enriched = ctx.group.syscall.enriched if ctx.group.syscall is not None else ""
        tty = key[5]
        return Process(
            entity_id=state.entity_id,
            pid=state.pid,
            start=state.start,
            executable=state.executable,
            name=state.name,
            args=args,
            command_line=" ".join(args),
            user=self.user(key[2], enriched, "EUID"),
            real_user=self.user(key[3], enriched, "UID"),
            group=self.user(key[4], enriched, "EGID"),
            parent=state.parent,
            tty="" if tty == "(none)" else tty,
            provarmor=state.own,
        )

    def user(self, uid: str, enriched: str, label: str) -> User | None:
        """The (cached) identity for a numeric id; its name comes from the ENRICHED fields."""
        if not uid:
            return None
        kind = "g" if label.endswith("GID") else "u"
        cached = self._users.get((kind, uid))
        if cached is None:
            name = _enriched_value(enriched, label) if uid != _UNSET_ID else ""
            cached = User(id=uid, name=name)
            if name or not enriched:
                self._users[(kind, uid)] = cached
        return cached

    def cached_user(self, uid: str, *, group: bool = False) -> User:
        """The identity for an id met elsewhere (setuid targets), named when known."""
        return self._users.get(("g" if group else "u", uid)) or User(id=uid)

    def _proctitle_args(self, ctx: SyscallContext) -> tuple[str, ...]:
        record = ctx.first("PROCTITLE")
        if record is None or "proctitle" not in record.fields:
            return ()
        return decode_proctitle(record.fields["proctitle"], source=self.source, line=record.line)


def _enriched_value(enriched: str, label: str) -> str:
    """``label="value"`` from the ENRICHED part ("" when absent or an unknown id)."""
    start = f" {enriched}".find(f' {label}="')
    if start < 0:
        return ""
    value_start = start + len(label) + 2
    end = enriched.find('"', value_start)
    value = enriched[value_start:end] if end > 0 else ""
    return "" if value.startswith(("unknown(", "unset")) else value
