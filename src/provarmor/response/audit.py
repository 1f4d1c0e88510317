"""The audit trail: every proposal, execution, result and undo, as JSON lines.

One :class:`AuditRecord` per line (``format_version`` 1) in an owner-only file
(``<state_dir>/actions.jsonl``), appended and flushed as it happens, so a crash in the
middle of an action still leaves its ``executing`` line. Each record says who or what
asked (``request.requested_by``), when (``time_ns``), why (``request.reason`` and
``request.incident_id``) and the outcome. :func:`read_audit` reads a trail back; a damaged
line is reported with its file:line and the lines around it are kept.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import msgspec

from provarmor.model.errors import ParseError
from provarmor.response.records import ActionRequest, ActionResult, Outcome, Target
from provarmor.storage.private import private_dir

FORMAT_VERSION = 1


class Phase(StrEnum):
    PROPOSED = "proposed"
    """Asked for (by the policy or a person); says the mode it will run in."""
    EXECUTING = "executing"
    """About to touch the host."""
    RESULT = "result"
    """What came of it (done, dry_run, refused, failed)."""
    UNDONE = "undone"
    """The result of undoing an earlier action (``undoes`` names it)."""


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int = FORMAT_VERSION
    time_ns: int
    phase: Phase
    request: ActionRequest
    mode: str = ""
    outcome: Outcome | None = None
    message: str = ""
    affected: tuple[str, ...] = ()
    undo_target: Target | None = None
    undoes: str = ""
    """For an undo: the id of the action it undoes."""


@dataclass(slots=True)
class AuditTrail:
    """Appends records to ``path`` (created 0600; its folder 0700)."""

    path: Path
    records: int = 0
    _encoder: msgspec.json.Encoder = field(default_factory=msgspec.json.Encoder)

    def __post_init__(self) -> None:
        private_dir(self.path.parent)

    def write(self, record: AuditRecord) -> AuditRecord:
        line = self._encoder.encode(record) + b"\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)
        self.records += 1
        return record

    def proposed(self, request: ActionRequest, *, mode: str) -> AuditRecord:
        return self.write(
            AuditRecord(time_ns=time.time_ns(), phase=Phase.PROPOSED, request=request, mode=mode)
        )

    def executing(self, request: ActionRequest, *, mode: str) -> AuditRecord:
        return self.write(
            AuditRecord(time_ns=time.time_ns(), phase=Phase.EXECUTING, request=request, mode=mode)
        )

    def result(
        self, request: ActionRequest, result: ActionResult, *, mode: str, undoes: str = ""
    ) -> AuditRecord:
        return self.write(
            AuditRecord(
                time_ns=time.time_ns(),
                phase=Phase.UNDONE if undoes else Phase.RESULT,
                request=request,
                mode=mode,
                outcome=result.outcome,
                message=result.message,
                affected=result.affected,
                undo_target=result.undo_target,
                undoes=undoes,
            )
        )


def parse_audit_line(line: bytes, *, location: str) -> AuditRecord:
    try:
        record = msgspec.json.decode(line, type=AuditRecord)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ParseError(f"not an audit record: {exc}", location=location) from None
    if record.format_version != FORMAT_VERSION:
        raise ParseError(
            f"audit record format {record.format_version} (this build reads {FORMAT_VERSION})",
            location=location,
        )
    return record


def read_audit(path: Path) -> tuple[list[AuditRecord], list[ParseError]]:
    """Every readable record of a trail, and one error (file:line) per damaged line."""
    records: list[AuditRecord] = []
    errors: list[ParseError] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(parse_audit_line(line, location=f"{path}:{number}"))
            except ParseError as exc:
                errors.append(exc)
    return records, errors
