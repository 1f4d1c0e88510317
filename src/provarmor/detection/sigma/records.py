"""Records: the flat text view of an event that compiled Sigma predicates read.

A :class:`Record` holds the values of the fields the active rules use (lower-case Sigma field
names -> text), their case-folded copies (Sigma matches case-insensitively by default, so
each value is folded once per event rather than once per rule), and the text a keyword
search looks in.

An event gives one record for event-kind rules, built from the getters in
:mod:`provarmor.detection.sigma.fields`, and one record per raw audit record for
``service: auditd`` rules (:func:`auditd_records`): Sigma auditd rules match single audit
records (``type: EXECVE`` with ``a0``, ``type: PATH`` with ``name`` ...), so the SYSCALL
record kept in ``Event.auditd`` is completed with the EXECVE and PATH records the canonical
event implies.
"""

from __future__ import annotations

from collections.abc import Iterable

from provarmor.detection.sigma.fields import EVENT_FIELDS, Getter, keyword_text
from provarmor.model.actions import Action
from provarmor.model.event import Event


class Record:
    """Field values of one event (or one audit record), raw and case-folded."""

    __slots__ = ("folded", "folded_text", "text", "values")

    def __init__(self, values: dict[str, str], text: tuple[str, ...] = ()) -> None:
        self.values = values
        self.folded = {key: value.lower() for key, value in values.items()}
        self.text = text
        self.folded_text = tuple(item.lower() for item in text)

    def __repr__(self) -> str:
        return f"Record({self.values!r}, text={self.text!r})"


RecordKey = tuple[tuple[str | None, ...], tuple[str, ...]]
"""An event's record in short: its field values (the builder's fields in order; ``None``:
absent) and its keyword text. Two events with the same key give the same record."""


class EventRecordBuilder:
    """Builds the record of an event with just the fields a set of rules reads."""

    def __init__(self, fields: Iterable[str], *, keywords: bool) -> None:
        self._names = tuple(sorted(set(fields)))
        self._getters: tuple[Getter, ...] = tuple(EVENT_FIELDS[name] for name in self._names)
        self._keywords = keywords

    def key(self, event: Event) -> RecordKey:
        """The event's :data:`RecordKey` (no folding, no dictionary: cheap)."""
        values = tuple([getter(event) for getter in self._getters])
        return values, keyword_text(event) if self._keywords else ()

    def record(self, key: RecordKey) -> Record:
        values, text = key
        return Record(
            {
                name: value
                for name, value in zip(self._names, values, strict=True)
                if value is not None
            },
            text,
        )

    def build(self, event: Event) -> Record:
        return self.record(self.key(event))


_PATH_NAMETYPE = {Action.CREATE: "CREATE", Action.DELETE: "DELETE"}


def auditd_records(event: Event) -> list[dict[str, str]]:
    """The audit records behind an event that carries ``Event.auditd``.

    The stored fields form the first record (``type`` SYSCALL unless it says otherwise;
    ``exe`` and ``comm`` filled from the process when missing). An exec adds an EXECVE
    record (``argc``, ``a0``..) from the arguments; an event with a file adds PATH records
    (``name``, ``nametype``: CREATE/DELETE/NORMAL; a rename gives the old path as DELETE and
    the new one as CREATE).
    """
    raw = event.auditd or {}
    base = {key.lower(): value for key, value in raw.items() if value != ""}
    base.setdefault("type", "SYSCALL")
    process = event.process
    if process.executable:
        base.setdefault("exe", process.executable)
    if process.name:
        base.setdefault("comm", process.name)
    records = [base]
    base_type = base["type"].upper()
    if event.event.action is Action.EXEC and base_type != "EXECVE" and process.args:
        execve = {"type": "EXECVE", "argc": str(len(process.args))}
        execve.update((f"a{index}", arg) for index, arg in enumerate(process.args))
        records.append(execve)
    if event.file is not None and base_type != "PATH":
        records.extend(_path_records(event))
    return records


def _path_records(event: Event) -> list[dict[str, str]]:
    file = event.file
    assert file is not None
    action = event.event.action
    if action in (Action.RENAME, Action.LINK) and file.original_path:
        return [
            {"type": "PATH", "name": file.original_path, "nametype": "DELETE"},
            {"type": "PATH", "name": file.path, "nametype": "CREATE"},
        ]
    if not file.path:
        return []
    return [{"type": "PATH", "name": file.path, "nametype": _PATH_NAMETYPE.get(action, "NORMAL")}]


def audit_record(fields: dict[str, str]) -> Record:
    """A record over one audit record: every field, and all values as keyword text."""
    return Record(fields, tuple(fields.values()))
