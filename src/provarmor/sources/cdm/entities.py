"""What the CDM importer remembers between records: subjects, objects and principals by UUID.

CDM events name their subject and objects by UUID only; the definitions come in earlier
records. Memory is bounded: every table is a :class:`BoundedMap` (least recently used entry
evicted first) and each eviction is counted by the caller, so a long stream never grows
without limit and never loses an entity silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provarmor.model.event import Endpoint, User
from provarmor.sources.bounded import BoundedMap


@dataclass(slots=True)
class SubjectState:
    """A process as known so far. Mutable: an exec changes its program, not its identity."""

    uuid: str
    pid: int = 0
    parent: str = ""
    start: int = 0
    executable: str = ""
    name: str = ""
    command_line: str = ""
    user: User | None = None


@dataclass(slots=True)
class ObjectInfo:
    """A file, pipe, source/sink or network flow. ``path`` may be learned from later events."""

    kind: str
    """``file``, ``pipe``, ``srcsink`` or ``netflow``."""
    path: str = ""
    file_type: str = ""
    local: Endpoint | None = None
    remote: Endpoint | None = None
    transport: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CdmLimits:
    """Table sizes. The defaults hold a CDM engagement day on a 24 GiB machine."""

    subjects: int = 200_000
    objects: int = 1_000_000
    principals: int = 10_000


@dataclass(slots=True)
class CdmState:
    """Per-file state of one import run."""

    limits: CdmLimits
    subjects: BoundedMap[str, SubjectState] = field(init=False)
    objects: BoundedMap[str, ObjectInfo] = field(init=False)
    principals: BoundedMap[str, User] = field(init=False)
    host_names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.subjects = BoundedMap(self.limits.subjects)
        self.objects = BoundedMap(self.limits.objects)
        self.principals = BoundedMap(self.limits.principals)

    @property
    def evictions(self) -> int:
        return self.subjects.evictions + self.objects.evictions + self.principals.evictions
