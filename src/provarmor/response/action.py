"""The action seam: an action takes a request (typed target inside) on this host and
returns a result. Each action lives in its own module and is listed once in
:data:`provarmor.response.registry.ACTIONS`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provarmor.response.context import ResponseContext
from provarmor.response.records import ActionKind, ActionRequest, ActionResult, Outcome, Target


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
