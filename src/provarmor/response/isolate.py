"""``isolate`` the host (only loopback, the manager, the bus and the allow-list stay
reachable) and its undo ``release``. An isolation with ``release_after_seconds`` is written
to ``isolation.json`` with its release time; :func:`release_due` (called by the agent's loop)
releases it when the time has come, also after an agent restart."""

from __future__ import annotations

import contextlib
import time

import msgspec

from provarmor.response.action import Action, ResponseContext, failed
from provarmor.response.firewall import (
    TABLE,
    allowed_script,
    apply_script,
    ensure_table,
    is_isolated,
    isolation_script,
    release_script,
)
from provarmor.response.records import ActionKind, ActionRequest, ActionResult, HostTarget, Outcome
from provarmor.storage.private import private_dir


class IsolationState(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int = 1
    isolated_at: float
    release_at: float = 0.0
    """Wall-clock seconds; 0: until released by hand."""


def isolate_host(request: ActionRequest, context: ResponseContext) -> ActionResult:
    target = request.target
    assert isinstance(target, HostTarget)
    table = ensure_table(context)
    if not table.ok:
        return failed(f"cannot create table {TABLE}: {table.output}")
    allowed = context.settings.reachable_networks()
    script = allowed_script(allowed)
    if not is_isolated(context):
        script += isolation_script()
    done = apply_script(context, script)
    if not done.ok:
        return failed(f"nft: {done.output}")
    now = time.time()
    release_at = now + target.release_after_seconds if target.release_after_seconds > 0 else 0.0
    private_dir(context.settings.state_dir)
    context.settings.isolation_file.write_bytes(
        msgspec.json.encode(IsolationState(isolated_at=now, release_at=release_at))
    )
    until = f", released automatically in {target.release_after_seconds:g} s" if release_at else ""
    kept = ", ".join(allowed) or "nothing but loopback"
    return ActionResult(
        outcome=Outcome.DONE,
        message=f"isolated: reachable only {kept}{until}",
        affected=(f"{TABLE} isolate_input", f"{TABLE} isolate_output"),
    )


def release_host(request: ActionRequest, context: ResponseContext) -> ActionResult:
    del request
    if is_isolated(context):
        done = apply_script(context, release_script())
        if not done.ok:
            return failed(f"nft: {done.output}")
    with contextlib.suppress(FileNotFoundError):
        context.settings.isolation_file.unlink()
    return ActionResult(
        outcome=Outcome.DONE,
        message="released: isolation rules removed",
        affected=(f"{TABLE} isolate_input", f"{TABLE} isolate_output"),
    )


def release_due(context: ResponseContext, *, now: float | None = None) -> bool:
    """Whether an isolation with a release time has reached it (then: call ``release``)."""
    try:
        state = msgspec.json.decode(
            context.settings.isolation_file.read_bytes(), type=IsolationState
        )
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return False
    current = time.time() if now is None else now
    return 0 < state.release_at <= current


ISOLATE = Action(ActionKind.ISOLATE, HostTarget, isolate_host, undo=ActionKind.RELEASE)
RELEASE = Action(ActionKind.RELEASE, HostTarget, release_host)
