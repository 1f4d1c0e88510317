"""``block`` a remote address (or address and port) in ProvArmor's nftables table, and its
undo ``unblock``. The manager, the bus and allow-listed networks are never blocked."""

from __future__ import annotations

from provarmor.response.action import Action, ResponseContext, failed, refused
from provarmor.response.allowlist import network_refusal
from provarmor.response.firewall import TABLE, apply_script, element, ensure_table
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    ActionResult,
    NetworkTarget,
    Outcome,
    describe_target,
)


def _change(request: ActionRequest, context: ResponseContext, *, verb: str) -> ActionResult:
    target = request.target
    assert isinstance(target, NetworkTarget)
    refusal = network_refusal(target.ip, context)
    if refusal is not None:
        return refused(refusal)
    if not 0 <= target.port <= 65_535:
        return refused(f"port out of range: {target.port}")
    table = ensure_table(context)
    if not table.ok:
        return failed(f"cannot create table {TABLE}: {table.output}")
    name, value = element(target.ip, target.port)
    done = apply_script(context, f"{verb} element {TABLE} {name} {{ {value} }}\n")
    if not done.ok:
        return failed(f"nft {verb} element {name} {{ {value} }}: {done.output}")
    past = "blocked" if verb == "add" else "unblocked"
    return ActionResult(
        outcome=Outcome.DONE,
        message=f"{past} {describe_target(target)}",
        affected=(f"{TABLE} {name} {{ {value} }}",),
    )


def block_address(request: ActionRequest, context: ResponseContext) -> ActionResult:
    return _change(request, context, verb="add")


def unblock_address(request: ActionRequest, context: ResponseContext) -> ActionResult:
    return _change(request, context, verb="delete")


BLOCK = Action(ActionKind.BLOCK, NetworkTarget, block_address, undo=ActionKind.UNBLOCK)
UNBLOCK = Action(ActionKind.UNBLOCK, NetworkTarget, unblock_address)
