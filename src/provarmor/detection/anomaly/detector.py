"""``AnomalyDetector``: online scoring of process profiles against a trained model.

Each event updates its process's profile (:class:`~.profile.ProfileTable`). A profile that
gains something new (file, endpoint, child, exec) becomes pending; pending profiles are scored
together when ``batch_size`` are pending or when event time has moved ``max_delay_seconds``
past the oldest pending change (an exit does not flush: an exited process is scored in the
next batch, so the delay stays bounded and batches stay large). Scoring is incremental (only
tokens new since a profile's last scoring cost anything). A process whose
score crosses the threshold raises ONE alert; it alerts again only if its score grows by
``realert_factor``. A process whose behaviour (context and top surprising tokens) already
alerted is counted in :attr:`stats` instead (a loop repeating one novelty alerts once).
Profiles are bounded: exited processes are kept in an LRU of ``max_exited``, live ones up to
``max_processes``; evictions are counted in :attr:`stats`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from provarmor.detection.anomaly.explanation import contributions, describe
from provarmor.detection.anomaly.profile import Profile, ProfileTable
from provarmor.detection.anomaly.scorer import AnomalyModel, Scored, Scorer
from provarmor.detection.anomaly.settings import AnomalySettings
from provarmor.model.actions import Action
from provarmor.model.alert import Alert, SignalKind
from provarmor.model.event import Event
from provarmor.model.time_units import seconds_to_ns

RULE_ID = "provarmor.anomaly.process"
RULE_TITLE = "Anomalous process behaviour"
# Read on the per-event path as a module global: on CPython 3.11 an attribute read on an
# Enum class goes through EnumType.__getattr__'s slow hook (~0.15 us; a global ~0.01 us).
_EXIT = Action.EXIT


@dataclass(slots=True)
class AnomalyStats:
    """Counters of one detector."""

    events: int = 0
    batches: int = 0
    scored: int = 0
    alerts: int = 0
    repeats: int = 0
    """Anomalous processes not alerted: their behaviour was alerted before."""
    evicted_exited: int = 0
    evicted_live: int = 0


def level_of(ratio: float) -> str:
    """Alert level from score / threshold."""
    if ratio >= 4.0:
        return "critical"
    if ratio >= 2.0:
        return "high"
    return "medium"


class AnomalyDetector:
    """The Detector protocol over the anomaly model."""

    name = "anomaly"

    def __init__(self, model: AnomalyModel, settings: AnomalySettings | None = None) -> None:
        self.settings = settings or AnomalySettings()
        self.model = model
        self.scorer = Scorer(model)
        self.stats = AnomalyStats()
        self._table = ProfileTable()
        self._pending: dict[str, Profile] = {}
        self._oldest_change = 0
        self._exited: OrderedDict[str, None] = OrderedDict()
        self._alerted: OrderedDict[str, None] = OrderedDict()
        self._max_delay = seconds_to_ns(
            self.settings.max_delay_seconds, what="anomaly.max_delay_seconds"
        )

    @property
    def profiles(self) -> dict[str, Profile]:
        return self._table.profiles

    def use_model(self, model: AnomalyModel) -> None:
        """Score with ``model`` from now on (a relearned version). Profiles are kept; their
        scoring state is reset, so each is scored afresh against the new model at its next
        change, and an alerted process alerts again only if it doubles its old ratio."""
        self.model = model
        self.scorer = Scorer(model)
        for profile in self._table.profiles.values():
            profile.reset_scoring()
            self._table.changed_profile(profile.entity_id)

    def on_event(self, event: Event) -> Sequence[Alert]:
        self.stats.events += 1
        table = self._table
        profile = table.observe(event)
        if table.changed:
            if not self._pending:
                self._oldest_change = event.timestamp
            for changed in table.changed:
                self._pending[changed.entity_id] = changed
            table.changed.clear()
            if len(table.profiles) > self.settings.max_processes:
                self._evict_live()
        if profile is None:
            return ()
        if event.event.action is _EXIT:
            self._remember_exit(profile)
        if self._pending and (
            len(self._pending) >= self.settings.batch_size
            or event.timestamp - self._oldest_change > self._max_delay
        ):
            return self._score_pending()
        return ()

    def flush(self) -> Sequence[Alert]:
        return self._score_pending()

    def _score_pending(self) -> list[Alert]:
        batch = list(self._pending.values())
        self._pending.clear()
        for profile in batch:
            profile.dirty = False
            self._table.changed_profile(profile.entity_id)
        if not batch:
            return []
        self.stats.batches += 1
        self.stats.scored += len(batch)
        alerts = []
        for profile, scored in zip(batch, self.scorer.score(batch), strict=True):
            if (
                scored.ratio >= 1.0
                and scored.ratio >= profile.alerted_score * self.settings.realert_factor
            ):
                profile.alerted_score = scored.ratio
                if self._is_new_behaviour(profile, scored):
                    alerts.append(self._alert(profile, scored))
        self.stats.alerts += len(alerts)
        return alerts

    def _is_new_behaviour(self, profile: Profile, scored: Scored) -> bool:
        signature = scored.signature(profile, tokens=self.model.top_tokens)
        alerted = self._alerted
        if signature in alerted:
            alerted.move_to_end(signature)
            self.stats.repeats += 1
            return False
        alerted[signature] = None
        if len(alerted) > self.settings.remembered_behaviours:
            alerted.popitem(last=False)
        return True

    def _alert(self, profile: Profile, scored: Scored) -> Alert:
        items = contributions(self.model, profile, scored, limit=self.settings.explain_tokens)
        files = tuple(
            dict.fromkeys(
                item.raw
                for item in items
                if item.attribute in ("exe", "read", "write", "exec", "child")
            )
        )
        endpoints = tuple(dict.fromkeys(item.raw for item in items if item.attribute == "net"))
        event_id = profile.change_event_id or profile.last_event_id
        return Alert(
            id=f"{RULE_ID}:{event_id}",
            rule_id=RULE_ID,
            rule_title=RULE_TITLE,
            level=level_of(scored.ratio),
            description=describe(self.model, profile, items),
            detector="anomaly",
            host_id=profile.host_id,
            event_ids=(event_id,),
            process_entity_ids=(profile.entity_id,),
            file_paths=files,
            remote_endpoints=endpoints,
            first_timestamp=profile.first_timestamp,
            last_timestamp=profile.last_timestamp,
            score=round(scored.ratio, 4),
            kind=SignalKind.SCORE,
        )

    def _remember_exit(self, profile: Profile) -> None:
        exited = self._exited
        exited[profile.entity_id] = None
        while len(exited) > self.settings.max_exited:
            entity_id, _ = exited.popitem(last=False)
            if self._table.forget(entity_id) is not None:
                self.stats.evicted_exited += 1

    def _evict_live(self) -> None:
        """Drop the least recently active live profiles down to 90% of the bound."""
        profiles = self._table.profiles
        keep = int(self.settings.max_processes * 0.9)
        ordered = sorted(
            (p for p in profiles.values() if p.entity_id not in self._pending),
            key=lambda p: p.last_timestamp,
        )
        for profile in ordered[: max(len(profiles) - keep, 0)]:
            self._table.forget(profile.entity_id)
            self._exited.pop(profile.entity_id, None)
            self.stats.evicted_live += 1
