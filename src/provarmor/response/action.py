"""The action seam: an action takes a request (typed target inside) and the context of the
host it runs on, and returns a result. Each action lives in its own module and is listed
once in :data:`provarmor.response.registry.ACTIONS`.

The context is what every action needs to know: who the host is, its process clock, the
agent's own pid, the settings. :func:`build_context` makes it once; tests make one whose
``network_namespace`` is a namespace of their own."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provarmor.response.records import ActionKind, ActionRequest, ActionResult, Outcome, Target
from provarmor.response.settings import ResponseSettings
from provarmor.sources.procfs import HostIdentity, ProcClock, read_clock, read_host_identity


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseContext:
    settings: ResponseSettings
    host: HostIdentity
    clock: ProcClock
    agent_pid: int
    proc: Path = Path("/proc")


def build_context(settings: ResponseSettings, *, proc: Path = Path("/proc")) -> ResponseContext:
    return ResponseContext(
        settings=settings,
        host=read_host_identity(proc),
        clock=read_clock(proc),
        agent_pid=os.getpid(),
        proc=proc,
    )


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    target_type: type[Target]
    run: Callable[[ActionRequest, ResponseContext], ActionResult]
    undo: ActionKind | None = None
    """The action that puts back what this one did (``None``: it is itself an undo)."""


def refused(message: str) -> ActionResult:
    return ActionResult(outcome=Outcome.REFUSED, message=message)


def failed(message: str, *, affected: tuple[str, ...] = ()) -> ActionResult:
    return ActionResult(outcome=Outcome.FAILED, message=message, affected=affected)
