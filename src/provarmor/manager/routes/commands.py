"""The command channel, manager -> agent, over the agent's own credential.

In cluster mode (``manager.bus_url``) commands reach the agent on the bus instead, signed
with the manager's key (``GET /agents/{id}/command-key`` hands the agent the public key
over this authenticated channel); the agent says it received one with ``POST
/agents/{id}/commands/{command}/delivered`` and reports the result as below.

``GET /agents/{id}/commands`` hands the agent every queued or delivered command of its
host: a command stays deliverable until the agent reports its result, so a lost answer
only means a redelivery, which the agent answers from its audit trail without running the
action again. A command still undelivered at its expiry is expired there (counted in
``provarmor_manager_commands_total{event="expired"}`` and audited): an expired run is never
run; an expired undo leaves the action done. ``POST /agents/{id}/commands/{command}/result``
records what the agent reports; a second report of the same result changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request

from provarmor.manager.actions import (
    RESULT_STATES,
    ActionAuditEntry,
    ActionRecord,
    ActionState,
    CommandKind,
    CommandResult,
)
from provarmor.manager.auth import Principal
from provarmor.manager.command_queue import PENDING, delivered_step, sweep
from provarmor.manager.deps import ApiError, ManagerContext, get_context, require_agent
from provarmor.manager.store import ActionQuery, AgentRecord, Page
from provarmor.response.records import Outcome

router = APIRouter(tags=["agents"])

Context = Annotated[ManagerContext, Depends(get_context)]
Agent = Annotated[Principal, Depends(require_agent)]

RESULT_AWAITED = (*PENDING, ActionState.TIMED_OUT)
"""A result is recorded in these states (one after a time-out still tells what happened)."""
MAX_COMMANDS = 100
"""Commands handed over per poll (the rest come with the next polls)."""


def _agent(context: ManagerContext, agent_id: str) -> AgentRecord:
    agent = context.store.agent(agent_id)
    if agent is None:
        raise ApiError(404, "unknown agent", field="agent_id")
    return agent


@router.get("/agents/{agent_id}/commands")
def commands(agent_id: str, principal: Agent, context: Context) -> dict[str, object]:
    """The commands waiting for this agent's host (expired ones are dropped, counted)."""
    agent = _agent(context, agent_id)
    now = time.time_ns()
    sweep(context, now, host=agent.host_id)
    handed: list[object] = []
    pending = context.store.actions(
        ActionQuery(host=agent.host_id, states=PENDING, page=Page(limit=MAX_COMMANDS))
    )
    for record in pending:
        moved = replace(
            record, state=ActionState.DELIVERED, deliveries=record.deliveries + 1, updated_ns=now
        )
        first = record.deliveries == 0
        entry = ActionAuditEntry(
            action_id=record.id,
            ts_ns=now,
            author=f"agent:{agent_id}",
            step=delivered_step(record.command),
            state=ActionState.DELIVERED,
        )
        if not context.store.update_action(moved, was=record.state, audit=entry if first else None):
            continue  # changed meanwhile (a result came in): not pending any more
        context.metrics.commands.labels(event="delivered" if first else "redelivered").inc()
        handed.append(msgspec.to_builtins(moved.to_command()))
    return {"commands": handed}


def _command_action(context: ManagerContext, agent: AgentRecord, command_id: str) -> ActionRecord:
    action_id = command_id.removesuffix("-undo")
    record = context.store.action(action_id)
    if record is None or record.host != agent.host_id:
        raise ApiError(404, "no such command for this agent's host", field="command_id")
    return record


@router.get("/agents/{agent_id}/command-key")
def command_key(agent_id: str, principal: Agent, context: Context) -> dict[str, str]:
    """The public key that signs this manager's commands on the bus (409 when the manager
    sends none there)."""
    _agent(context, agent_id)
    if context.bus_commands is None:
        raise ApiError(409, "this manager sends no commands on a bus", field="agent_id")
    key = context.bus_commands.publisher.key.verify_key
    return {"algorithm": "ed25519", "key_id": key.id, "public_key": key.text()}


@router.post("/agents/{agent_id}/commands/{command_id}/delivered")
def delivered(
    agent_id: str, command_id: str, principal: Agent, context: Context
) -> dict[str, object]:
    """The agent received a command from the bus (its result is awaited from now on,
    ``manager.result_seconds`` at most); saying it again changes nothing."""
    agent = _agent(context, agent_id)
    record = _command_action(context, agent, command_id)
    wanted = CommandKind.UNDO if command_id.endswith("-undo") else CommandKind.RUN
    if record.state is not ActionState.QUEUED or record.command is not wanted:
        return {"action_id": record.id, "state": record.state.value, "recorded": False}
    now = time.time_ns()
    moved = replace(record, state=ActionState.DELIVERED, deliveries=1, updated_ns=now)
    entry = ActionAuditEntry(
        action_id=record.id,
        ts_ns=now,
        author=f"agent:{agent_id}",
        step=delivered_step(record.command),
        state=ActionState.DELIVERED,
        message="received from the bus",
    )
    recorded = context.store.update_action(moved, was=record.state, audit=entry)
    if recorded:
        context.metrics.commands.labels(event="delivered").inc()
    return {"action_id": record.id, "state": moved.state.value, "recorded": recorded}


@router.post("/agents/{agent_id}/commands/{command_id}/result")
async def result(
    agent_id: str, command_id: str, request: Request, principal: Agent, context: Context
) -> dict[str, object]:
    """The agent's result of a command; the action moves to done, failed or refused (for
    an undo: undone, or back to done when the undo did not work)."""
    try:
        report = msgspec.json.decode(await request.body(), type=CommandResult)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ApiError(400, f"not a command result: {exc}", field="body") from None
    agent = _agent(context, agent_id)
    undo = command_id.endswith("-undo")
    record = _command_action(context, agent, command_id)
    wanted = CommandKind.UNDO if undo else CommandKind.RUN
    if record.state not in RESULT_AWAITED or record.command is not wanted:
        return {"action_id": record.id, "state": record.state.value, "recorded": False}
    now = time.time_ns()
    if undo:
        state = ActionState.UNDONE if report.outcome is Outcome.DONE else ActionState.DONE
        moved = replace(record, state=state, command=CommandKind.RUN, updated_ns=now)
    else:
        state = RESULT_STATES[report.outcome]
        moved = replace(
            record, state=state, result_json=msgspec.json.encode(report).decode(), updated_ns=now
        )
    entry = ActionAuditEntry(
        action_id=record.id,
        ts_ns=now,
        author=f"agent:{agent_id}",
        step="undo result" if undo else "result",
        state=state,
        outcome=report.outcome.value,
        message=report.message,
    )
    recorded = context.store.update_action(moved, was=record.state, audit=entry)
    if recorded:
        context.metrics.commands.labels(event="result").inc()
    return {"action_id": record.id, "state": state.value, "recorded": recorded}
