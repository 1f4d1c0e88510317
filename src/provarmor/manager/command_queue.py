"""What becomes of a queued command, on either channel (HTTPS poll or bus).

* In cluster mode a queued command is sent on the bus (:func:`send_on_bus`); one the bus
  did not take is audited so and sent again by the next sweep.

* A command not delivered before its expiry is ``expired``: an expired run is never run;
  an expired undo leaves the action done.
* A command delivered (the agent fetched it, or said it received it from the bus) whose
  result has not come within ``manager.result_seconds`` of its first delivery is
  ``timed_out``: whether it ran is unknown; a result that comes later is still recorded.

Both are written with an audit entry by ``manager`` and counted in
``provarmor_manager_commands_total``. :func:`sweep` applies them; it runs wherever
actions are read or handed out (the action API, each agent's command poll and status
report), so nobody sees a command waiting past its time.
"""

from __future__ import annotations

import time
from dataclasses import replace

from provarmor.manager.actions import ActionAuditEntry, ActionRecord, ActionState, CommandKind
from provarmor.manager.bus_commands import NoAgent
from provarmor.manager.deps import ManagerContext
from provarmor.manager.store import ActionQuery, Page
from provarmor.model.errors import StorageError
from provarmor.model.time_units import seconds_to_ns

PENDING = (ActionState.QUEUED, ActionState.DELIVERED)
SWEEP_PAGE = 1000
SENT_STEP = "sent on the bus"
SEND_FAILED_STEP = "not sent on the bus"


def delivered_step(command: CommandKind) -> str:
    return f"{command.value} delivered"


def expire(context: ManagerContext, record: ActionRecord, now: int) -> None:
    if record.command is CommandKind.RUN:
        moved = replace(record, state=ActionState.EXPIRED, updated_ns=now)
    else:
        moved = replace(record, state=ActionState.DONE, command=CommandKind.RUN, updated_ns=now)
    entry = ActionAuditEntry(
        action_id=record.id,
        ts_ns=now,
        author="manager",
        step=f"{record.command.value} expired",
        state=moved.state,
        message="the host's agent did not fetch the command before it expired",
    )
    if context.store.update_action(moved, was=record.state, audit=entry):
        context.metrics.commands.labels(event="expired").inc()


def first_delivery_ns(context: ManagerContext, record: ActionRecord) -> int | None:
    """When the current command of ``record`` was first delivered (from its audit)."""
    step = delivered_step(record.command)
    found = [entry.ts_ns for entry in context.store.action_audit(record.id) if entry.step == step]
    return found[-1] if found else None


def time_out(context: ManagerContext, record: ActionRecord, now: int) -> None:
    moved = replace(record, state=ActionState.TIMED_OUT, updated_ns=now)
    seconds = context.settings.result_seconds
    entry = ActionAuditEntry(
        action_id=record.id,
        ts_ns=now,
        author="manager",
        step=f"{record.command.value} timed out",
        state=ActionState.TIMED_OUT,
        message=f"the agent received the command but reported no result within {seconds} s",
    )
    if context.store.update_action(moved, was=record.state, audit=entry):
        context.metrics.commands.labels(event="timed_out").inc()


def send_on_bus(context: ManagerContext, record: ActionRecord) -> bool:
    """Send the queued command of ``record`` to its host's agent on the bus; audited
    either way (a failed send is sent again by :func:`sweep`)."""
    assert context.bus_commands is not None
    now = time.time_ns()
    try:
        agent = context.bus_commands.send(context.store, record, now_ns=now)
    except NoAgent:
        step, message = SEND_FAILED_STEP, "no agent is enrolled for the host"
    except StorageError as exc:  # the bus did not store it
        step, message = SEND_FAILED_STEP, f"{exc}; sent again when the bus answers"
    else:
        step, message = SENT_STEP, f"to agent {agent}"
    sent = step == SENT_STEP
    context.metrics.commands.labels(event="sent" if sent else "send_failed").inc()
    context.store.add_action_audit(
        ActionAuditEntry(
            action_id=record.id,
            ts_ns=now,
            author="manager",
            step=step,
            state=record.state,
            message=message,
        )
    )
    return sent


def _unsent(context: ManagerContext, record: ActionRecord) -> bool:
    """Whether the last try to send the command of ``record`` on the bus failed."""
    tries = [
        entry.step
        for entry in context.store.action_audit(record.id)
        if entry.step in (SENT_STEP, SEND_FAILED_STEP) and entry.ts_ns >= record.updated_ns
    ]
    return bool(tries) and tries[-1] == SEND_FAILED_STEP


def sweep(context: ManagerContext, now: int, *, host: str = "") -> None:
    """Expire and time out the pending commands (of ``host``, or of every host); in
    cluster mode, send again those the bus did not take."""
    wait_ns = seconds_to_ns(context.settings.result_seconds)
    pending = context.store.actions(
        ActionQuery(host=host, states=PENDING, page=Page(limit=SWEEP_PAGE))
    )
    for record in pending:
        if record.state is ActionState.QUEUED:
            if record.expires_ns <= now:
                expire(context, record, now)
            elif context.bus_commands is not None and _unsent(context, record):
                send_on_bus(context, record)
            continue
        delivered = first_delivery_ns(context, record)
        if delivered is not None and delivered + wait_ns <= now:
            time_out(context, record, now)
