"""Campaigns become incidents: scoring, the incident rule, and the engine the pipeline calls.

Score of a campaign: each rule counted once at the weight of its strongest signal (repeats
of one behaviour add nothing), plus each anomalous process at ``anomaly_weight`` per unit of
score/threshold (capped at 3 units), times a kill-chain progression factor
``1 + stage_bonus * (stages - 1)`` over the HOLMES stages its signals' tactics reach, each
rule counting for one stage at most (:func:`distinct_reach`).

An anomaly signal is statistical novelty: a program doing something its baseline never
showed. Novelty is what an attack looks like, and also what a new tool, a new directory or
a host's first run of some routine looks like. So (``corroborate_anomalies``) an anomaly
signal is evidence only when something corroborates it: its own process runs in a raising
lineage (``context_effect`` ``kept``: a network-facing server's child, a downloaded file,
remote input), or the campaign holds a rule signal of level medium or above (after context:
a lowered one is low; informational and low rule signals describe, they do not accuse). An
uncorroborated one is left out of the score, the levels and the stages (counted in
:attr:`CampaignScore.uncorroborated`); it stays in the campaign and counts as soon as a
rule signal joins it.

The incident rule decides which campaigns are incidents:

* default (no calibration): at least one ``high`` or ``critical`` signal, or signals over
  at least two tactics with at least one ``medium``. A semantic default, not tuned on data.
  The tactics are counted as the score counts stages: by distinct behaviours, each rule
  for one tactic (one act filed under persistence and privilege escalation is one step,
  not two), and without the signals a lowering context explained (``context_effect``
  ``lowered``: a package transaction's or an admin's routine act adds its score to the
  campaign but is not evidence that makes one an incident).
* calibrated: ``score >= min_score``, where :meth:`IncidentRule.calibrate` picks the
  smallest threshold that keeps false incidents at or below a target rate on campaigns
  from benign VALIDATION runs, never below one high signal's score
  (:func:`calibration_floor`).

The rule is a stored record (a calibrated one lives in the model bundle's metadata) with a
format version (:data:`RULE_VERSION`, read by :func:`parse_rule`); the configuration's
``incident`` section (:class:`~provarmor.investigation.settings.IncidentSettings`) picks one
(:func:`configured_rule`).

Signals are weighed by their kind, whatever detector made them: a rule match
(:attr:`SignalKind.MATCH`) by its level, once per rule; a measured one
(:attr:`SignalKind.SCORE`) by its score, once per process.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgspec
from msgspec import Struct

from provarmor.graph.noise import NoiseFilter
from provarmor.graph.store import GraphStore
from provarmor.investigation.campaigns import Campaign, CampaignBuilder, CampaignStats
from provarmor.investigation.hubs import HubIndex
from provarmor.investigation.settings import IncidentSettings, InvestigationSettings, RuleChoice
from provarmor.investigation.story import StoryContext, build_story
from provarmor.model.alert import Alert, SignalKind
from provarmor.model.errors import ConfigError
from provarmor.model.incident import Incident
from provarmor.model.time_units import hours_to_ns, seconds_to_ns

ANOMALY_CAP = 3.0
Reach = TypeVar("Reach", int, str)
"""What a behaviour reaches: kill-chain stages or tactic names."""

RULE_VERSION = 1
"""Format version of a stored :class:`IncidentRule` (a rule stored without one is version 1)."""
MAX_REFRESHES = 8
MAX_QUIET_NS = hours_to_ns(1)
LEVELS = ("informational", "low", "medium", "high", "critical")
CORROBORATING_LEVELS = frozenset(LEVELS[LEVELS.index("medium") :])
"""Levels of a rule signal that corroborate its campaign's anomaly signals."""
HOLMES_STAGES: dict[str, int] = {
    "initial-access": 1,
    "execution": 1,
    "persistence": 2,
    "command-and-control": 2,
    "defense-evasion": 2,
    "stealth": 2,
    "defense-impairment": 2,
    "privilege-escalation": 3,
    "discovery": 4,
    "credential-access": 4,
    "lateral-movement": 5,
    "collection": 6,
    "exfiltration": 6,
    "impact": 6,
}
"""Tactic -> HOLMES kill-chain stage (1 initial compromise, 2 establish foothold, 3 privilege
escalation, 4 internal reconnaissance, 5 lateral movement, 6 complete mission)."""


class IncidentRule(Struct, frozen=True, kw_only=True):
    """When a campaign is an incident."""

    version: int = RULE_VERSION
    min_score: float = 0.0
    """0: the default rule (levels and tactics); above 0: a score threshold."""
    source: str = "default"
    """``default`` or ``calibrated on N validation campaigns (H host-hours, target T/h)``."""

    def admits(self, summary: CampaignScore) -> bool:
        if self.min_score > 0:
            return summary.score >= self.min_score
        levels = summary.levels
        if levels.get("high", 0) or levels.get("critical", 0):
            return True
        return summary.breadth >= 2 and levels.get("medium", 0) > 0

    @classmethod
    def calibrate(
        cls,
        validation_campaign_scores: Sequence[float],
        *,
        target: float,
        hours: float,
        floor: float = 0.0,
    ) -> IncidentRule:
        """The smallest threshold with at most ``target`` false incidents per validation
        host-hour, given the scores of every campaign seen in benign validation runs lasting
        ``hours`` host-hours in all, and not below ``floor``. Benign runs in which few
        campaigns score say only that the threshold MAY be low, not how low: the floor (one
        high signal, :func:`calibration_floor`) keeps a calibrated rule from admitting less
        evidence than the default rule needs from one signal. Pure."""
        if hours <= 0:
            raise ValueError("validation runs must last some time")
        allowed = math.floor(target * hours + 1e-9)
        ranked = sorted(validation_campaign_scores, reverse=True)
        if allowed >= len(ranked):
            threshold = math.nextafter(0.0, 1.0)
        else:
            threshold = math.nextafter(ranked[allowed], math.inf)
        floored = f", floor {floor:.3g} (one high signal)" if threshold < floor else ""
        return cls(
            min_score=max(threshold, floor),
            source=(
                f"calibrated on {len(ranked)} validation campaigns "
                f"({hours:.3g} host-hours, target {target:.3g}/host-hour{floored})"
            ),
        )


def calibration_floor(settings: InvestigationSettings) -> float:
    """The lowest threshold calibration may choose: the score of one high rule signal, the
    weakest evidence the default rule takes as an incident on its own."""
    return settings.weight_high


def parse_rule(stored: object, *, location: str) -> IncidentRule:
    """A stored rule (:func:`msgspec.to_builtins` of one), checked; ``location`` names where it
    was stored in errors."""
    try:
        rule = msgspec.convert(stored, IncidentRule)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"unreadable incident rule: {exc}", location=location) from None
    if rule.version != RULE_VERSION:
        raise ConfigError(
            f"incident rule version {rule.version} is not supported (this build reads "
            f"{RULE_VERSION})",
            location=location,
        )
    return rule


def configured_rule(settings: IncidentSettings, *, calibrated: IncidentRule | None) -> IncidentRule:
    """The rule the ``incident`` settings choose; ``calibrated``: the loaded model's, if any."""
    if settings.rule is RuleChoice.SCORE:
        return IncidentRule(min_score=settings.min_score, source="configured (incident.min_score)")
    if settings.rule is RuleChoice.AUTO and calibrated is not None:
        return calibrated
    return IncidentRule()


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignScore:
    """A campaign as the incident rule sees it (also for calibration)."""

    campaign_id: str
    host_id: str
    score: float
    levels: dict[str, int]
    breadth: int
    """Tactics that distinct behaviours reach, each counting for one, lowered signals left
    out (see the module docstring)."""
    stages: int
    terminals: int
    signals: int
    uncorroborated: int = 0
    """Anomaly signals left out: nothing corroborated them (see the module docstring)."""
    first_ts: int
    last_ts: int


def score_campaign(campaign: Campaign, *, settings: InvestigationSettings) -> CampaignScore:
    rules: dict[str, float] = {}
    anomalous: dict[str, float] = {}
    levels: dict[str, int] = {}
    behaviours: dict[str, set[int]] = {}
    unexplained: dict[str, set[str]] = {}
    corroborated = not settings.corroborate_anomalies or any(
        alert.kind is SignalKind.MATCH and alert.level in CORROBORATING_LEVELS
        for alert in campaign.alerts.values()
    )
    uncorroborated = 0
    for alert in campaign.alerts.values():
        if alert.kind is SignalKind.SCORE and not (corroborated or alert.context_effect == "kept"):
            uncorroborated += 1
            continue
        levels[alert.level or "low"] = levels.get(alert.level or "low", 0) + 1
        behaviour = alert.rule_id or alert.id
        reached = behaviours.setdefault(behaviour, set())
        tactics = {ref.name.lower().replace(" ", "-") for ref in alert.tactics}
        reached.update(HOLMES_STAGES[name] for name in tactics if name in HOLMES_STAGES)
        if alert.context_effect != "lowered":
            unexplained.setdefault(behaviour, set()).update(tactics)
        if alert.kind is SignalKind.SCORE:
            weight = min(alert.score, ANOMALY_CAP) * settings.anomaly_weight
            for entity in alert.process_entity_ids:
                anomalous[entity] = max(anomalous.get(entity, 0.0), weight)
        else:
            weight = settings.level_weight(alert.level)
            rules[alert.rule_id] = max(rules.get(alert.rule_id, 0.0), weight)
    stages = distinct_reach(behaviours.values())
    base = sum(rules.values()) + sum(anomalous.values())
    factor = 1 + settings.stage_bonus * max(stages - 1, 0)
    return CampaignScore(
        campaign_id=campaign.id,
        host_id=campaign.host_id,
        score=round(base * factor, 4),
        levels=levels,
        breadth=distinct_reach(unexplained.values()),
        stages=stages,
        terminals=len(campaign.terminals),
        signals=len(campaign.alerts),
        uncorroborated=uncorroborated,
        first_ts=campaign.first_ts,
        last_ts=campaign.last_ts,
    )


def distinct_reach(behaviours: Iterable[set[Reach]]) -> int:
    """How many kill-chain stages (or tactics) distinct behaviours (rules, each with the
    stages or tactics it is filed under) reach, each behaviour counting for one at most: a
    rule filed under two tactics (a shell start-up file: persistence and privilege
    escalation) is one step of the attack, not two. Greedy matching, the most constrained
    behaviours first. Pure."""
    taken: set[Reach] = set()
    for stages in sorted(behaviours, key=len):
        free = sorted(stages - taken)
        if free:
            taken.add(free[0])
    return len(taken)


class IncidentEngine:
    """Signals in (after their events reached the store), incidents out."""

    def __init__(
        self,
        store: GraphStore,
        *,
        settings: InvestigationSettings | None = None,
        rule: IncidentRule | None = None,
        noise: NoiseFilter | None = None,
    ) -> None:
        self.settings = settings or InvestigationSettings()
        self.rule = rule or IncidentRule()
        self._hubs = HubIndex(store, fanout=self.settings.hub_fanout)
        self._noise = noise or NoiseFilter()
        self._builder = CampaignBuilder(
            store, settings=self.settings, hubs=self._hubs, noise=self._noise
        )
        self._context = StoryContext(
            store=store, hubs=self._hubs, settings=self.settings, noise=self._noise
        )
        self._incidents: dict[str, Incident] = {}
        self._built_at: dict[str, int] = {}
        """Incident id -> data time its story was last built."""
        self._quiet: dict[str, int] = {}
        """Incident id -> how long to wait before the next rebuild (ns), when not the base."""
        self._pending: dict[str, tuple[int, int]] = {}
        """Incident id -> ``(version, updated_ts)`` of an update whose story is not built yet."""
        self._signals_at = 0
        """Data time of the latest signal since :meth:`take_pending` (stale stories are
        refreshed against it)."""

    @property
    def stats(self) -> CampaignStats:
        return self._builder.stats

    def add_signals(self, signals: Sequence[Alert], *, defer: bool = False) -> list[Incident]:
        """Place the signals; the incidents they created or updated. With ``defer`` their
        new versions are counted now and their stories wait for :meth:`take_pending` (a
        consumer that takes many batches at once builds each story once, at the end)."""
        self._hubs.refresh()
        touched: set[str] = set()
        for signal in signals:
            touched |= self._builder.add(signal)
        campaigns = self._builder.campaigns
        for campaign_id in sorted(touched, key=lambda c: int(c[1:])):
            campaign = campaigns.get(campaign_id)
            if campaign is not None and self.rule.admits(
                score_campaign(campaign, settings=self.settings)
            ):
                self._touch(campaign, signals)
        for gone in [i for i in self._incidents if i.removeprefix("inc-") not in campaigns]:
            del self._incidents[gone]
            self._built_at.pop(gone, None)
            self._quiet.pop(gone, None)
        for gone in [i for i in self._pending if i.removeprefix("inc-") not in campaigns]:
            del self._pending[gone]
        latest = max((s.last_timestamp for s in signals), default=0)
        self._signals_at = max(self._signals_at, latest)
        return [] if defer else self.take_pending()

    def take_pending(self) -> list[Incident]:
        """Build the stories of the incidents updated since the last call (in the order
        they were first updated), then refresh stale ones (:meth:`_refresh`)."""
        campaigns = self._builder.campaigns
        changed: list[Incident] = []
        pending, self._pending = self._pending, {}
        for incident_id, (version, updated) in pending.items():
            campaign = campaigns.get(incident_id.removeprefix("inc-"))
            if campaign is not None:
                summary = score_campaign(campaign, settings=self.settings)
                changed.append(self._build(campaign, summary, version=version, updated=updated))
        now, self._signals_at = self._signals_at, 0
        changed.extend(self._refresh(now, skip={c.id for c in changed}))
        return changed

    def _touch(self, campaign: Campaign, signals: Sequence[Alert]) -> None:
        """Count a new version of the campaign's incident (its story is built later)."""
        incident_id = f"inc-{campaign.id}"
        self._built_at[incident_id] = max(
            (s.last_timestamp for s in signals), default=campaign.last_ts
        )
        previous = self._incidents.get(incident_id)
        version, updated = self._pending.get(incident_id) or (
            (previous.version, previous.updated_ts) if previous is not None else (0, 0)
        )
        self._pending[incident_id] = (
            version + 1,
            max((s.last_timestamp for s in signals), default=0) or updated or campaign.last_ts,
        )

    def _refresh(self, now: int, *, skip: set[str]) -> list[Incident]:
        """Rebuild the stories of incidents no signal touched for ``story_refresh_seconds``
        (their attack went on without raising signals: an exfiltration, a cleanup); a new
        version only where the attack graph grew. At most ``MAX_REFRESHES`` per call; each
        rebuild that finds nothing new doubles the wait before the next (up to an hour)."""
        base = seconds_to_ns(
            self.settings.story_refresh_seconds, what="investigation.story_refresh_seconds"
        )
        stale = [
            i
            for i, built in self._built_at.items()
            if built + self._quiet.get(i, base) <= now and i not in skip and i in self._incidents
        ]
        refreshed: list[Incident] = []
        for incident_id in sorted(stale, key=self._built_at.__getitem__)[:MAX_REFRESHES]:
            previous = self._incidents[incident_id]
            campaign = self._builder.campaigns.get(previous.campaign_id)
            if campaign is None:
                continue
            summary = score_campaign(campaign, settings=self.settings)
            self._built_at[incident_id] = now
            incident = self._build(
                campaign, summary, version=previous.version + 1, updated=previous.updated_ts
            )
            if {n.id for n in incident.nodes} == {n.id for n in previous.nodes}:
                self._incidents[incident_id] = previous  # nothing new: keep the version
                waited = self._quiet.get(incident_id, base)
                self._quiet[incident_id] = min(waited * 2, MAX_QUIET_NS)
                continue
            self._quiet.pop(incident_id, None)
            refreshed.append(incident)
        return refreshed

    def incidents(self) -> list[Incident]:
        return sorted(self._incidents.values(), key=lambda i: (i.first_ts, i.id))

    def campaigns(self) -> list[CampaignScore]:
        """Every campaign kept, incident or not, with its score."""
        return [score_campaign(c, settings=self.settings) for c in self._builder.campaigns.values()]

    def _build(
        self, campaign: Campaign, summary: CampaignScore, *, version: int, updated: int
    ) -> Incident:
        incident_id = f"inc-{campaign.id}"
        story = build_story(campaign, context=self._context)
        merged = tuple(f"inc-{c}" for c in campaign.merged)
        incident = Incident(
            id=incident_id,
            campaign_id=campaign.id,
            host_id=campaign.host_id,
            title=story.title,
            summary=story.summary,
            severity=_severity(summary),
            score=summary.score,
            first_ts=campaign.first_ts,
            last_ts=campaign.last_ts,
            updated_ts=updated,
            root_cause=story.root_cause,
            version=version,
            nodes=tuple(story.nodes),
            edges=tuple(story.edges),
            steps=tuple(story.steps),
            techniques=tuple(story.techniques),
            tactics=tuple(story.tactics),
            alert_ids=tuple(campaign.alerts),
            impacted_files=tuple(story.impacted_files),
            contacted_endpoints=tuple(story.contacted_endpoints),
            merged_ids=tuple(i for i in merged if i != incident_id),
            context=tuple(story.context),
            truncated=tuple(story.truncated),
        )
        self._incidents[incident_id] = incident
        for absorbed in merged:
            self._incidents.pop(absorbed, None)
            self._built_at.pop(absorbed, None)
            self._quiet.pop(absorbed, None)
        return incident


def _severity(summary: CampaignScore) -> str:
    strongest = max(
        (LEVELS.index(level) for level, n in summary.levels.items() if n and level in LEVELS),
        default=1,
    )
    if summary.stages >= 3 and strongest < len(LEVELS) - 1:
        strongest += 1
    return LEVELS[max(strongest, 1)]
