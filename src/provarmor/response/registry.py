"""The one list of response actions, in the order a policy applies them (contain first:
suspend and kill before files and network)."""

from __future__ import annotations

from provarmor.response.action import Action
from provarmor.response.block import BLOCK, UNBLOCK
from provarmor.response.isolate import ISOLATE, RELEASE
from provarmor.response.kill import KILL
from provarmor.response.lock_user import LOCK_USER, UNLOCK_USER
from provarmor.response.quarantine import QUARANTINE, RESTORE
from provarmor.response.records import ActionKind
from provarmor.response.revert import REVERT_FILE, UNREVERT_FILE
from provarmor.response.suspend import RESUME, SUSPEND

ACTIONS: tuple[Action, ...] = (
    SUSPEND,
    RESUME,
    KILL,
    QUARANTINE,
    RESTORE,
    REVERT_FILE,
    UNREVERT_FILE,
    BLOCK,
    UNBLOCK,
    ISOLATE,
    RELEASE,
    LOCK_USER,
    UNLOCK_USER,
)
BY_KIND: dict[ActionKind, Action] = {action.kind: action for action in ACTIONS}
