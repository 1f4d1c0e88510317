"""Put each fork before its child's first event.

The kernel writes a syscall's records when the syscall returns. A child often runs (and
execs) before its parent returns from fork, and after vfork or posix_spawn the parent cannot
return until the child has exec'd, so the child's events regularly precede the fork that
created it. Groups therefore pass through a short look-ahead buffer: when a fork (clone,
fork, vfork, clone3) arrives, it is moved in front of the first buffered group of its child,
so the mapper learns the child's identity before the child acts.
"""

from __future__ import annotations

from collections import deque

from provarmor.sources.auditd.coalescer import AuditGroup
from provarmor.sources.auditd.syscalls import NUMBERS

DEFAULT_LOOKAHEAD = 128
"""Groups held back. A child that acts more than this many events before its parent's fork
returns is attributed to a process of unknown start (its pid predating the log)."""

_FORK_NAMES = ("clone", "fork", "vfork", "clone3")
FORK_NUMBERS: dict[str, frozenset[str]] = {
    arch: frozenset(str(table[name]) for name in _FORK_NAMES if name in table)
    for arch, table in NUMBERS.items()
}
"""``arch`` field -> decimal numbers (as written in records) of the fork-like syscalls."""


class ForkReorderer:
    """A bounded look-ahead that moves forks ahead of their children's events."""

    def __init__(self, *, lookahead: int = DEFAULT_LOOKAHEAD) -> None:
        self._buffer: deque[AuditGroup] = deque()
        self._pids: dict[str, int] = {}
        """pid (text) -> how many buffered groups it acts in."""
        self._lookahead = lookahead
        self.moved = 0
        """Forks moved ahead of their child's events."""

    def push(self, group: AuditGroup) -> list[AuditGroup]:
        """Add one group (with its SYSCALL record); return the groups now released."""
        buffer = self._buffer
        pids = self._pids
        child = fork_child(group)
        if child is not None and child in pids:
            self._insert_before_child(group, child)
        else:
            buffer.append(group)
        pid = _pid(group)
        pids[pid] = pids.get(pid, 0) + 1
        if len(buffer) <= self._lookahead:
            return []
        return [self._release()]

    def flush(self) -> list[AuditGroup]:
        """Release everything (end of input, or an idle live stream)."""
        groups = list(self._buffer)
        self._buffer.clear()
        self._pids.clear()
        return groups

    def _release(self) -> AuditGroup:
        group = self._buffer.popleft()
        pid = _pid(group)
        left = self._pids[pid] - 1
        if left:
            self._pids[pid] = left
        else:
            del self._pids[pid]
        return group

    def _insert_before_child(self, group: AuditGroup, child: str) -> None:
        for position, queued in enumerate(self._buffer):
            if _pid(queued) == child and queued.timestamp >= group.timestamp:
                self._buffer.insert(position, group)
                self.moved += 1
                return
        self._buffer.append(group)


def _pid(group: AuditGroup) -> str:
    record = group.syscall
    return record.fields.get("pid", "") if record is not None else ""


def fork_child(group: AuditGroup) -> str | None:
    """The child pid (decimal text) of a successful fork-like syscall, else None."""
    record = group.syscall
    if record is None:
        return None
    fields = record.fields
    numbers = FORK_NUMBERS.get(fields.get("arch", ""))
    if numbers is None or fields.get("syscall") not in numbers:
        return None
    result = fields.get("exit", "")
    if fields.get("success") != "yes" or not result.isdigit() or result == "0":
        return None
    return result
