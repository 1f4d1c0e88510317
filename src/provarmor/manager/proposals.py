"""Proposing exceptions from provenance: what an analyst's "benign" on an incident or an alert
turns into.

The alerts are grouped by rule; each group gives one proposed exception whose conditions come
from the provenance graph of the host: the acting processes' executables, the ancestors their
lineages share (nearest first, up to :data:`LINEAGE_DEPTH`), and the objects (file paths,
remote endpoints). Paths are generalised where a part looks random (``/tmp/.portal-6ww3`` ->
``/tmp/.portal-*``, ``/proc/4711/status`` -> ``/proc/*/status``) unless that would leave a
pattern too broad, in which case the exact path is kept. Nothing here writes: the caller
stores the records.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provarmor.manager.exceptions import (
    Conditions,
    ExceptionRecord,
    ExceptionScope,
    ExceptionState,
    too_broad,
)
from provarmor.model.alert import Alert

LINEAGE_DEPTH = 3
MAX_OBJECTS = 20
"""Object patterns per proposed exception."""
_SEPARATORS = re.compile(r"([._\-+@:~]+)")
_NAME_WITH_NUMBER = re.compile(r"[A-Za-z]+\d{1,3}")
"""``python3``, ``lib64``, ``x86``: a name with a short number, not an id."""
_HEX = re.compile(r"[0-9a-fA-F]{8,}")

Lineage = Callable[[str], list[str]]
"""A process entity id -> its executable, then its ancestors' executables, nearest first
(empty when the host's graph does not know the process)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Who proposes, why, for which scope, from what."""

    scope: ExceptionScope
    host: str
    reason: str
    source: str
    author: str
    now_ns: int


def _random(token: str) -> bool:
    """Whether one part of a name looks generated (an id, a pid, a mktemp suffix)."""
    if not (token.isascii() and token.isalnum()):
        return False
    if not any(char.isdigit() for char in token):
        switches = sum(a.islower() != b.islower() for a, b in itertools.pairwise(token))
        return len(token) >= 6 and switches >= 4
    if token.isdigit():
        return len(token) >= 4
    return bool(_HEX.fullmatch(token)) or not _NAME_WITH_NUMBER.fullmatch(token)


def escape(text: str) -> str:
    """``text`` as a glob that matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def generalise(path: str) -> str:
    """A glob for ``path`` with its random-looking parts as ``*`` (the exact path, escaped,
    when generalising would make the pattern too broad)."""
    segments: list[str] = []
    for segment in path.split("/"):
        parts = _SEPARATORS.split(segment)
        segments.append(
            "".join(
                part if index % 2 else ("*" if part and _random(part) else escape(part))
                for index, part in enumerate(parts)
            )
        )
    pattern = "/".join(segments)
    return escape(path) if too_broad(pattern) else pattern


def _common_prefix(chains: Sequence[list[str]]) -> list[str]:
    shared = list(chains[0]) if chains else []
    for chain in chains[1:]:
        length = 0
        while length < min(len(shared), len(chain)) and shared[length] == chain[length]:
            length += 1
        shared = shared[:length]
    return shared


def _ordered(values: Sequence[str], limit: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))[:limit]


def propose(
    alerts: Sequence[Alert], *, lineage_of: Lineage, origin: Origin, new_id: Callable[[], str]
) -> list[ExceptionRecord]:
    """One proposed exception per rule among ``alerts`` whose acting process the graph knows
    (alerts about unknown processes give nothing)."""
    groups: dict[str, list[tuple[Alert, list[str]]]] = {}
    for alert in alerts:
        actor = alert.process_entity_ids[0] if alert.process_entity_ids else ""
        found = lineage_of(actor) if actor else []
        if found and found[0]:
            chain = [generalise(executable) for executable in found if executable]
            groups.setdefault(alert.rule_id, []).append((alert, chain))
    records: list[ExceptionRecord] = []
    for rule_id, members in groups.items():
        chains = [chain for _, chain in members]
        conditions = Conditions(
            rules=(rule_id,),
            executables=_ordered([chain[0] for chain in chains], MAX_OBJECTS),
            lineage=tuple(_common_prefix([chain[1:] for chain in chains])[:LINEAGE_DEPTH]),
            paths=_ordered(
                [generalise(path) for alert, _ in members for path in alert.file_paths],
                MAX_OBJECTS,
            ),
            endpoints=_ordered(
                [escape(endpoint) for alert, _ in members for endpoint in alert.remote_endpoints],
                MAX_OBJECTS,
            ),
        )
        records.append(
            ExceptionRecord(
                id=new_id(),
                state=ExceptionState.PROPOSED,
                scope=origin.scope,
                host=origin.host if origin.scope is ExceptionScope.HOST else "",
                conditions=conditions,
                reason=origin.reason,
                source=origin.source,
                created_ns=origin.now_ns,
                created_by=origin.author,
                updated_ns=origin.now_ns,
            )
        )
    return records
