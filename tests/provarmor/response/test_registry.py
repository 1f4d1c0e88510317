"""One action per kind, each undo an action of its own whose target type fits."""

from provarmor.response.quarantine import RESTORE
from provarmor.response.records import ActionKind
from provarmor.response.registry import ACTIONS, BY_KIND
from provarmor.response.revert import UNREVERT_FILE


def test_every_kind_has_one_action():
    assert sorted(a.kind for a in ACTIONS) == sorted(ActionKind)
    assert len(BY_KIND) == len(ACTIONS)


def test_every_undoable_action_names_an_existing_undo():
    undoable = [a for a in ACTIONS if a.undo is not None]
    assert {a.kind for a in undoable} == {
        ActionKind.SUSPEND,
        ActionKind.QUARANTINE,
        ActionKind.BLOCK,
        ActionKind.ISOLATE,
        ActionKind.LOCK_USER,
        ActionKind.REVERT_FILE,
    }
    for action in undoable:
        undo = BY_KIND[action.undo]
        assert undo.undo is None
        assert undo.target_type is action.target_type or undo in (RESTORE, UNREVERT_FILE)
