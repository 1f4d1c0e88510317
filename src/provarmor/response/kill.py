"""``kill``: end a process and all its descendants (SIGKILL, after stopping the whole tree so
that nothing forks away). Not undoable."""

from __future__ import annotations

import signal

from provarmor.response.action import Action, ResponseContext, failed, refused
from provarmor.response.allowlist import process_refusal
from provarmor.response.processes import find_target, pinned_tree, send, wait_exited
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    ActionResult,
    Outcome,
    ProcessTarget,
)

EXIT_TIMEOUT_S = 2.0


def kill_tree(request: ActionRequest, context: ResponseContext) -> ActionResult:
    target = request.target
    assert isinstance(target, ProcessTarget)
    root = find_target(target, context)
    if root is None:
        return refused(f"pid {target.pid} is not {target.entity_id} (gone, or pid reused)")
    refusal = process_refusal(root, context, explicit=request.explicit)
    if refusal is not None:
        return refused(f"pid {root.pid}: {refusal}")
    with pinned_tree(root, context, explicit=request.explicit, stop=True) as tree:
        for member in tree.members:
            send(member, signal.SIGKILL)
        alive = wait_exited(tree.members, timeout=EXIT_TIMEOUT_S)
        pids = tree.pids()
        skipped = tree.skipped
    note = f"; left alone: {', '.join(skipped)}" if skipped else ""
    if alive:
        left = ", ".join(str(member.info.pid) for member in alive)
        return failed(f"still alive after SIGKILL: {left}{note}", affected=pids)
    return ActionResult(
        outcome=Outcome.DONE, message=f"killed {len(pids)} process(es){note}", affected=pids
    )


KILL = Action(ActionKind.KILL, ProcessTarget, kill_tree)
