"""A host's benign baseline, gathered online over one learning window (event time).

The window ``[start, end)`` is cut in event time: a process whose first event falls before
the *cut* (``validation_fraction`` before the end) is a TRAINING process, counted once, with
its complete profile, when it has exited (after a grace of ``max_exited`` later exits, for
late children) or when the window closes; a process that starts after the cut is a
VALIDATION process, never counted, kept as its profile history (as
:func:`~.profile.build_histories` makes it) to calibrate the threshold. This is the split of
``provarmor train`` (:func:`~.train.split_by_time`) made by time instead of by count, so
thresholds come from a held-out slice of the same window only.

Memory and the checkpoint are bounded: open profiles (``max_open_processes``; beyond it
the least recently active are counted early), validation histories
(``max_validation_processes``) and distinct token counts (``max_tokens``). Whatever a bound
leaves out is counted in :attr:`Baseline.dropped`. Processes the running model alerted on,
and their descendants, are left out (:meth:`Baseline.exclude`): a relearn must not learn an
attack as normal.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

import msgspec

from provarmor.detection.anomaly.profile import ATTRIBUTES, Profile, ProfileTable, snapshot
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.detection.anomaly.train import (
    MIN_TRAINING_PROCESSES,
    MIN_VALIDATION_PROCESSES,
    TokenCounts,
)
from provarmor.model.actions import Action
from provarmor.model.event import Event


class ProfileRecord(msgspec.Struct, array_like=True, frozen=True):
    """A profile in a checkpoint (tokens only: raw values name nothing training needs)."""

    entity_id: str
    host_id: str
    executable: str
    parent_id: str
    parent_exe: str
    first_timestamp: int
    last_timestamp: int
    changes: int
    exited: bool
    tokens: list[list[str]]
    """Per attribute, in :data:`~.profile.ATTRIBUTES` order."""


class BaselineRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A :class:`Baseline` in a checkpoint."""

    start: int
    end: int
    span: int
    cut: int
    last: int
    events: int
    processes: int
    dropped: dict[str, int]
    counted: int
    executables: dict[str, int]
    known: dict[str, int]
    document_frequency: dict[str, int]
    open: list[ProfileRecord]
    histories: dict[str, list[ProfileRecord]]
    validation: list[list[ProfileRecord]]
    exited: list[str]
    excluded: list[str]


@dataclass(frozen=True, slots=True)
class BaselineData:
    """A closed window: what training counts and what calibration scores."""

    counts: TokenCounts
    validation: list[list[Profile]]


class Baseline:
    """The baseline of one window, fed one event at a time."""

    def __init__(self, *, start: int, end: int, settings: LearningSettings) -> None:
        self.start = start
        self.end = end
        self.span = max(end - start, 1)
        """The window's length as set (an extension adds whole spans)."""
        self.cut = end - int((end - start) * settings.validation_fraction)
        self.settings = settings
        self.events = 0
        self.processes = 0
        self.last = start
        """The latest event time observed (past ``end`` when the window was extended)."""
        self.dropped: Counter[str] = Counter()
        self.counts = TokenCounts()
        self.validation: list[list[Profile]] = []
        self._table = ProfileTable()
        self._histories: dict[str, list[Profile]] = {}
        self._exited: OrderedDict[str, None] = OrderedDict()
        self._excluded: OrderedDict[str, None] = OrderedDict()

    def observe(self, event: Event) -> None:
        """Feed one event of the window."""
        self.events += 1
        if event.timestamp > self.last:
            self.last = event.timestamp
        process = event.process
        entity_id = process.entity_id
        if not entity_id or entity_id in self._excluded:
            return
        table = self._table
        if entity_id not in table.profiles:
            parent = process.parent.entity_id if process.parent is not None else ""
            if parent and parent in self._excluded:
                self._remember_excluded(entity_id)
                return
            self.processes += 1
            if event.timestamp >= self.cut:
                self._histories[entity_id] = []
        profile = table.observe(event)
        table.changed.clear()
        if profile is None:
            return
        history = self._histories.get(entity_id)
        changes = profile.changes
        if (
            history is not None
            and profile.change_event_id == event.event.id
            and changes & (changes - 1) == 0
        ):
            history.append(snapshot(profile))
        if event.event.action is Action.EXIT:
            self._exited[entity_id] = None
            while len(self._exited) > self.settings.max_exited:
                self._finish(self._exited.popitem(last=False)[0])
        if len(table.profiles) > self.settings.max_open_processes:
            self._count_early()

    def exclude(self, entity_id: str) -> None:
        """Leave a process (an alerted one) and its later descendants out of the baseline."""
        if self._table.profiles.pop(entity_id, None) is not None:
            self._histories.pop(entity_id, None)
            self._exited.pop(entity_id, None)
            self.dropped["excluded_alerted"] += 1
        self._remember_excluded(entity_id)

    def shortfall(self) -> str:
        """Why the window cannot be trained on yet ("" when it can)."""
        training = self.counts.processes + len(self._table.profiles) - len(self._histories)
        validation = len(self.validation) + len(self._histories)
        if training < MIN_TRAINING_PROCESSES:
            return f"{training} training processes of the {MIN_TRAINING_PROCESSES} needed"
        if validation < MIN_VALIDATION_PROCESSES:
            return f"{validation} held-out processes of the {MIN_VALIDATION_PROCESSES} needed"
        return ""

    def extend(self, clock: int) -> None:
        """Too few processes at the end: lengthen the window by whole spans past ``clock``
        and move the cut with it (held-out processes now before the cut are counted)."""
        self.end = self.start + self.span * ((clock - self.start) // self.span + 1)
        self.cut = self.end - int((self.end - self.start) * self.settings.validation_fraction)
        held_out = []
        for history in self.validation:
            if history[0].first_timestamp < self.cut:
                self._count(history[-1])
            else:
                held_out.append(history)
        self.validation = held_out
        for entity_id in list(self._histories):
            if self._table.profiles[entity_id].first_timestamp < self.cut:
                del self._histories[entity_id]

    def close(self) -> BaselineData:
        """Count every open process; the window is then spent."""
        for entity_id in list(self._table.profiles):
            self._finish(entity_id)
        self._exited.clear()
        return BaselineData(counts=self.counts, validation=self.validation)

    def carry_exclusions(self, other: Baseline) -> None:
        """Keep excluding what ``other`` (the previous window) excluded."""
        for entity_id in other._excluded:
            self._remember_excluded(entity_id)

    def _remember_excluded(self, entity_id: str) -> None:
        excluded = self._excluded
        excluded[entity_id] = None
        excluded.move_to_end(entity_id)
        if len(excluded) > self.settings.max_open_processes:
            excluded.popitem(last=False)

    def _finish(self, entity_id: str) -> None:
        profile = self._table.profiles.pop(entity_id)
        history = self._histories.pop(entity_id, None)
        if history is None:
            self._count(profile)
            return
        if not history or history[-1].changes != profile.changes:
            history.append(snapshot(profile))
        if len(self.validation) < self.settings.max_validation_processes:
            self.validation.append(history)
        else:
            self.dropped["validation_processes"] += 1

    def _count(self, profile: Profile) -> None:
        left_out = self.counts.add(profile, max_keys=self.settings.max_tokens)
        if left_out:
            self.dropped["tokens"] += left_out

    def _count_early(self) -> None:
        """Count the least recently active open processes, down to 90% of the bound."""
        profiles = self._table.profiles
        keep = int(self.settings.max_open_processes * 0.9)
        ordered = sorted(profiles.values(), key=lambda profile: profile.last_timestamp)
        for profile in ordered[: max(len(profiles) - keep, 0)]:
            self._exited.pop(profile.entity_id, None)
            self._finish(profile.entity_id)
            self.dropped["counted_early"] += 1

    def to_record(self) -> BaselineRecord:
        counts = self.counts
        return BaselineRecord(
            start=self.start,
            end=self.end,
            span=self.span,
            cut=self.cut,
            last=self.last,
            events=self.events,
            processes=self.processes,
            dropped=dict(self.dropped),
            counted=counts.processes,
            executables=dict(counts.executables),
            known=dict(counts.known),
            document_frequency=dict(counts.document_frequency),
            open=[_record(profile) for profile in self._table.profiles.values()],
            histories={
                entity_id: [_record(profile) for profile in history]
                for entity_id, history in self._histories.items()
            },
            validation=[[_record(profile) for profile in history] for history in self.validation],
            exited=list(self._exited),
            excluded=list(self._excluded),
        )

    @classmethod
    def from_record(cls, record: BaselineRecord, *, settings: LearningSettings) -> Baseline:
        baseline = cls(start=record.start, end=record.end, settings=settings)
        baseline.span = record.span
        baseline.cut = record.cut
        baseline.last = record.last
        baseline.events = record.events
        baseline.processes = record.processes
        baseline.dropped.update(record.dropped)
        baseline.counts = TokenCounts(
            processes=record.counted,
            executables=Counter(record.executables),
            known=Counter(record.known),
            document_frequency=Counter(record.document_frequency),
        )
        for item in record.open:
            baseline._table.profiles[item.entity_id] = _profile(item)
        baseline._histories = {
            entity_id: [_profile(item) for item in history]
            for entity_id, history in record.histories.items()
        }
        baseline.validation = [
            [_profile(item) for item in history] for history in record.validation
        ]
        baseline._exited = OrderedDict.fromkeys(record.exited)
        baseline._excluded = OrderedDict.fromkeys(record.excluded)
        return baseline


def _record(profile: Profile) -> ProfileRecord:
    return ProfileRecord(
        entity_id=profile.entity_id,
        host_id=profile.host_id,
        executable=profile.executable,
        parent_id=profile.parent_id,
        parent_exe=profile.parent_exe,
        first_timestamp=profile.first_timestamp,
        last_timestamp=profile.last_timestamp,
        changes=profile.changes,
        exited=profile.exited,
        tokens=[list(profile.tokens[attribute]) for attribute in ATTRIBUTES],
    )


def _profile(record: ProfileRecord) -> Profile:
    profile = Profile(
        entity_id=record.entity_id,
        host_id=record.host_id,
        executable=record.executable,
        parent_id=record.parent_id,
        parent_exe=record.parent_exe,
        first_timestamp=record.first_timestamp,
        last_timestamp=record.last_timestamp,
        exited=record.exited,
        changes=record.changes,
    )
    profile.tokens = {
        attribute: {token: token for token in tokens}
        for attribute, tokens in zip(ATTRIBUTES, record.tokens, strict=True)
    }
    return profile
