"""The detection rules the manager runs on uploads."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from provarmor.manager.auth import Principal, Role
from provarmor.manager.deps import ManagerContext, get_context, require

router = APIRouter(tags=["rules"])

Context = Annotated[ManagerContext, Depends(get_context)]
Reader = Annotated[Principal, Depends(require(Role.ANALYST))]


@router.get("/rules")
def list_rules(principal: Reader, context: Context) -> list[dict[str, object]]:
    """Loaded rules: key (the rule id), title, level, ATT&CK techniques and tactics."""
    return [asdict(rule) for rule in context.kit.rules()]
