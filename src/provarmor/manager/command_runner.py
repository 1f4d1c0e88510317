"""The agent's side of the command channel: fetch the response commands of its host, run
each through the agent's :class:`~provarmor.response.responder.Responder` (the allow-list
applies inside every action, whoever asked) and report the result.

A command runs once per action id: before running, the runner looks the id up in the
responder's audit trail and, when a result is there (a redelivery after a lost report, a
restart), reports that result again instead of acting. A command past its expiry when it
arrives is refused, not run, and reported so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from provarmor.manager.actions import Command, CommandKind, CommandResult
from provarmor.manager.client import ManagerClient, UplinkError
from provarmor.response.audit import AuditRecord, Phase, read_audit
from provarmor.response.records import Outcome
from provarmor.response.responder import Responder

log = logging.getLogger(__name__)


def _result(record: AuditRecord) -> CommandResult:
    assert record.outcome is not None
    return CommandResult(
        outcome=record.outcome,
        message=record.message,
        affected=record.affected,
        undo_target=record.undo_target,
    )


@dataclass(slots=True)
class CommandRunner:
    client: ManagerClient
    responder: Responder
    counters: dict[str, int] = field(default_factory=dict)

    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def _recorded(self, command: Command) -> AuditRecord | None:
        """The result of ``command`` in the audit trail, if it ran before."""
        path = self.responder.audit.path
        if not path.exists():
            return None
        records, _ = read_audit(path)
        action_id = command.request.id
        for record in reversed(records):
            if command.command is CommandKind.RUN:
                if record.phase is Phase.RESULT and record.request.id == action_id:
                    return record
            elif record.phase is Phase.UNDONE and record.undoes == action_id:
                return record
        return None

    def run(self, command: Command) -> CommandResult:
        """Run one command (or answer it from the audit trail); never raises for the host's
        state: a failure is the result."""
        recorded = self._recorded(command)
        if recorded is not None:
            self._count("commands.repeated")
            return _result(recorded)
        if command.expires_ns <= time.time_ns():
            self._count("commands.expired")
            return CommandResult(outcome=Outcome.REFUSED, message="the command had expired")
        self._count(f"commands.{command.command.value}")
        if command.command is CommandKind.RUN:
            return _result(self.responder.run(command.request))
        try:
            record = self.responder.undo_by_id(
                command.request.id,
                requested_by=command.request.requested_by,
                reason=f"undo of {command.request.id} from the manager",
            )
        except ValueError as exc:
            return CommandResult(outcome=Outcome.REFUSED, message=str(exc))
        return _result(record)

    def poll(self) -> int:
        """Release an isolation whose time has come, then fetch, run and report every
        waiting command; returns how many were reported. A report that does not get through
        is sent again with the next poll (the manager delivers the command again; the trail
        answers it)."""
        if self.responder.tick() is not None:
            self._count("isolation.released")
        try:
            commands = self.client.commands()
        except UplinkError as exc:
            log.warning("response commands not fetched: %s", exc)
            self._count("commands.fetch_failed")
            return 0
        reported = 0
        for command in commands:
            result = self.run(command)
            try:
                self.client.report_result(command.id, result)
            except UplinkError as exc:
                log.warning("result of command %s not reported: %s", command.id, exc)
                self._count("commands.report_failed")
                continue
            reported += 1
        return reported
