"""``suspend`` (SIGSTOP the whole tree) and its undo ``resume`` (SIGCONT the tree)."""

from __future__ import annotations

import signal

from provarmor.response.action import Action, ResponseContext, refused
from provarmor.response.allowlist import process_refusal
from provarmor.response.processes import find_target, pinned_tree, send
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    ActionResult,
    Outcome,
    ProcessTarget,
)


def _signal_tree(request: ActionRequest, context: ResponseContext, *, resume: bool) -> ActionResult:
    target = request.target
    assert isinstance(target, ProcessTarget)
    root = find_target(target, context)
    if root is None:
        return refused(f"pid {target.pid} is not {target.entity_id} (gone, or pid reused)")
    refusal = process_refusal(root, context, explicit=request.explicit)
    if refusal is not None:
        return refused(f"pid {root.pid}: {refusal}")
    with pinned_tree(root, context, explicit=request.explicit, stop=not resume) as tree:
        if resume:
            for member in tree.members:
                send(member, signal.SIGCONT)
        pids, skipped = tree.pids(), tree.skipped
    verb = "resumed" if resume else "suspended"
    note = f"; left alone: {', '.join(skipped)}" if skipped else ""
    return ActionResult(
        outcome=Outcome.DONE, message=f"{verb} {len(pids)} process(es){note}", affected=pids
    )


def suspend_tree(request: ActionRequest, context: ResponseContext) -> ActionResult:
    return _signal_tree(request, context, resume=False)


def resume_tree(request: ActionRequest, context: ResponseContext) -> ActionResult:
    return _signal_tree(request, context, resume=True)


SUSPEND = Action(ActionKind.SUSPEND, ProcessTarget, suspend_tree, undo=ActionKind.RESUME)
RESUME = Action(ActionKind.RESUME, ProcessTarget, resume_tree)
