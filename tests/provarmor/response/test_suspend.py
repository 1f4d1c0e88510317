"""``suspend`` stops a real process tree (state T), ``resume`` lets it run again."""

import pytest

from provarmor.response.records import ActionKind, ActionRequest, Outcome
from provarmor.response.suspend import RESUME, SUSPEND

from .conftest import TREE, children_of, state_of, target_of, wait_for

pytestmark = pytest.mark.privileged


def test_suspend_then_resume_the_tree(context, spawn):
    shell = spawn(*TREE, children=2)
    members = [shell.pid, *children_of(shell.pid)]
    target = target_of(shell.pid, context)
    stop = ActionRequest(id="s", kind=ActionKind.SUSPEND, target=target, requested_by="test")
    result = SUSPEND.run(stop, context)
    assert result.outcome is Outcome.DONE, result.message
    assert sorted(result.affected) == sorted(map(str, members))
    wait_for(lambda: all(state_of(pid) == "T" for pid in members), what="stopped")
    assert SUSPEND.undo is ActionKind.RESUME
    go = ActionRequest(id="r", kind=ActionKind.RESUME, target=target, requested_by="test")
    assert RESUME.run(go, context).outcome is Outcome.DONE
    wait_for(lambda: all(state_of(pid) == "S" for pid in members), what="running again")


def test_suspend_of_a_gone_process_is_refused(context, spawn):
    process = spawn("sleep", "300")
    target = target_of(process.pid, context)
    process.kill()
    process.wait()
    stop = ActionRequest(id="s", kind=ActionKind.SUSPEND, target=target, requested_by="test")
    assert SUSPEND.run(stop, context).outcome is Outcome.REFUSED
