"""Finding and signalling a process tree without ever hitting a reused pid.

A target names a process by entity id (digest of host, boot, pid and start time). Before
anything is signalled, each process is *pinned*: a pidfd is opened on its pid and only then
is ``/proc/PID/stat``'s start time compared with the one seen; a match proves the pidfd
holds that very process (it was alive after the pidfd was opened and had started before),
and every signal goes through the pidfd (``pidfd_send_signal``), so a pid freed and reused
meanwhile is never signalled.

A tree is gathered by stopping as it goes (SIGSTOP each pinned member, then look for new
children again) so that nothing forks away while the tree is collected.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

from provarmor.model.errors import ParseError
from provarmor.response.action import ResponseContext
from provarmor.response.allowlist import process_refusal
from provarmor.response.records import ProcessTarget
from provarmor.sources.procfs import ProcessInfo, iter_processes, parse_stat, read_process

MAX_ROUNDS = 20
"""Rounds of "stop the members, look for new children" before giving up on a growing tree."""


def find_target(target: ProcessTarget, context: ResponseContext) -> ProcessInfo | None:
    """The running process the target names, or ``None`` (gone, its pid now belongs to
    another process, or it has exited and waits to be reaped)."""
    info = read_process(target.pid, clock=context.clock, proc=context.proc)
    if info is None or info.entity_id(context.host) != target.entity_id:
        return None
    return None if _exited(info.pid, context) else info


def _exited(pid: int, context: ResponseContext) -> bool:
    """A zombie: it has exited (nothing left to stop), its parent has not reaped it yet."""
    try:
        text = (context.proc / str(pid) / "stat").read_text()
    except OSError:
        return True
    return text[text.rfind(")") + 2 : text.rfind(")") + 3] == "Z"


def _start_ticks(pid: int, context: ResponseContext) -> int | None:
    path = context.proc / str(pid) / "stat"
    try:
        return parse_stat(path.read_text(), location=str(path)).start_ticks
    except (OSError, ParseError):
        return None


@dataclass(frozen=True, slots=True)
class Pinned:
    info: ProcessInfo
    fd: int


def pin(info: ProcessInfo, context: ResponseContext) -> Pinned | None:
    """A pidfd on ``info``'s process, or ``None`` when that process is gone."""
    try:
        fd = os.pidfd_open(info.pid)
    except OSError:
        return None
    if _start_ticks(info.pid, context) != info.start_ticks:
        os.close(fd)
        return None
    return Pinned(info, fd)


def send(pinned: Pinned, signum: signal.Signals) -> bool:
    try:
        signal.pidfd_send_signal(pinned.fd, signum)
    except ProcessLookupError:
        return False
    return True


def _children(parents: set[int], context: ResponseContext) -> Iterator[ProcessInfo]:
    for info in iter_processes(clock=context.clock, proc=context.proc):
        if info.ppid in parents:
            yield info


@dataclass(slots=True)
class Tree:
    """A pinned process tree: ``members`` (root first) and what the allow-list kept out."""

    members: list[Pinned]
    skipped: list[str]

    def close(self) -> None:
        for member in self.members:
            os.close(member.fd)

    def pids(self) -> tuple[str, ...]:
        return tuple(str(member.info.pid) for member in self.members)


@contextlib.contextmanager
def pinned_tree(
    root: ProcessInfo, context: ResponseContext, *, explicit: bool, stop: bool
) -> Iterator[Tree]:
    """Pin ``root`` and its descendants (allow-listed ones are skipped, with their subtree).
    ``stop``: SIGSTOP each member as it is pinned, so the tree cannot grow meanwhile."""
    tree = Tree(members=[], skipped=[])
    seen: set[int] = set()
    frontier = [root]
    try:
        for _ in range(MAX_ROUNDS):
            for info in frontier:
                seen.add(info.pid)
                if _exited(info.pid, context):
                    continue
                refusal = process_refusal(info, context, explicit=explicit)
                if refusal is not None:
                    tree.skipped.append(f"{info.pid}: {refusal}")
                    continue
                pinned = pin(info, context)
                if pinned is None:
                    continue
                tree.members.append(pinned)
                if stop:
                    send(pinned, signal.SIGSTOP)
            parents = {member.info.pid for member in tree.members}
            frontier = [c for c in _children(parents, context) if c.pid not in seen]
            if not frontier:
                break
        yield tree
    finally:
        tree.close()


def wait_exited(members: list[Pinned], *, timeout: float) -> list[Pinned]:
    """Wait until every member has exited (its pidfd turns readable); returns those still
    alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = list(members)
    while alive:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        poller = select.poll()
        for member in alive:
            poller.register(member.fd, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(left * 1000)}
        alive = [member for member in alive if member.fd not in ready]
    return alive
