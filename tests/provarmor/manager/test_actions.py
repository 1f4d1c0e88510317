"""The records of manager actions: a command carries its typed request through JSON; an
action's request and result read back; an undo's command id is the one the responder gives
an undo; the approval list names real action kinds only."""

import msgspec
import pytest

from provarmor.manager.actions import (
    ActionRecord,
    ActionState,
    Command,
    CommandKind,
    CommandResult,
)
from provarmor.manager.settings import ManagerSettings
from provarmor.model.errors import ConfigError
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    Outcome,
    ProcessTarget,
    QuarantinedTarget,
)

REQUEST = ActionRequest(
    id="act-1",
    kind=ActionKind.SUSPEND,
    target=ProcessTarget(entity_id="e1", pid=42),
    requested_by="analyst:a",
    host_id="h1",
)


def record(**changes) -> ActionRecord:
    values = {
        "id": "act-1",
        "host": "h1",
        "incident_id": "",
        "kind": ActionKind.SUSPEND,
        "request_json": msgspec.json.encode(REQUEST).decode(),
        "state": ActionState.QUEUED,
        "needs_approval": False,
        "proposed_by": "analyst:a",
        "created_ns": 1,
        "updated_ns": 1,
        "expires_ns": 99,
    }
    return ActionRecord(**(values | changes))


def test_a_command_carries_its_typed_request_through_json():
    command = record().to_command()
    assert command == Command(id="act-1", command=CommandKind.RUN, request=REQUEST, expires_ns=99)
    assert msgspec.json.decode(msgspec.json.encode(command), type=Command) == command


def test_an_undo_command_is_named_as_the_responder_names_an_undo():
    command = record(command=CommandKind.UNDO).to_command()
    assert (command.id, command.command, command.request) == ("act-1-undo", "undo", REQUEST)


def test_the_result_reads_back_with_its_undo_target():
    assert record().result is None
    result = CommandResult(
        outcome=Outcome.DONE, affected=("42",), undo_target=QuarantinedTarget(quarantine_id="q")
    )
    done = record(result_json=msgspec.json.encode(result).decode())
    assert done.result == result


def test_approval_names_real_action_kinds_only():
    assert ManagerSettings().approval_required == ("isolate", "lock_user")
    assert ManagerSettings(approval_required=("kill",)).approval_required == ("kill",)
    with pytest.raises(ConfigError, match="not a response action: 'nuke'") as caught:
        ManagerSettings(approval_required=("nuke",))
    assert caught.value.location == "manager.approval_required"
