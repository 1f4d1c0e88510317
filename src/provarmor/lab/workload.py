"""What a benign workload is: a named kind of ordinary work the lab can run for a while.

A workload's ``run`` performs one bounded session of its work (a few seconds: one build,
one admin session, one burst of client requests) through
:meth:`provarmor.lab.environment.LabEnvironment.run`, as the lab user a real person doing
it would be. The mix runner calls it repeatedly, interleaved with the others, until the
mix's duration is spent. ``looks_like`` says which attack behaviour the workload imitates,
so false positives are measured honestly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provarmor.lab.context import LabContext
    from provarmor.lab.environment import LabEnvironment


def no_artifacts(ctx: LabContext) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    name: str
    title: str
    description: str
    run: Callable[[LabEnvironment, random.Random], None] = field(repr=False)
    looks_like: str = ""
    """The attack behaviour this benign work resembles (empty when none)."""
    artifacts: Callable[[LabContext], tuple[str, ...]] = field(default=no_artifacts, repr=False)
    """Paths outside the lab users' homes that the workload may create (removed on stop)."""
