"""How settings are declared: one dataclass per package (``<package>/settings.py``), each field
made with :func:`setting` so its type, default, description and maturity live in one place.
Loading, validation, ``-o key=value`` overrides and the generated reference all read these
declarations (:mod:`provarmor.pipeline.config`)."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any


class Maturity(StrEnum):
    STABLE = "stable"
    INCUBATING = "incubating"
    EXPERIMENTAL = "experimental"


def setting(default: Any, description: str, *, maturity: Maturity = Maturity.STABLE) -> Any:
    """A settings field: ``max_nodes: int = setting(400_000, "Nodes held in memory.")``."""
    return dataclasses.field(
        default=default, metadata={"description": description, "maturity": maturity}
    )
