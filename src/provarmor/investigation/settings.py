"""Settings of the investigation layer: campaign search bounds, hubs, history kept, story
size and the weights that score a campaign (:class:`InvestigationSettings`), and the incident
rule, which decides which campaigns are incidents (:class:`IncidentSettings`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from provarmor.model.errors import ConfigError
from provarmor.model.setting import Maturity, setting


@dataclass(frozen=True, slots=True, kw_only=True)
class InvestigationSettings:
    max_hops: int = setting(
        12, "Cost budget of one terminal's backward search (a hop costs 1, 2 via an endpoint)."
    )
    max_visited: int = setting(
        400, "Nodes one terminal's backward search may visit (truncations are counted)."
    )
    lookback_hours: float = setting(
        72.0, "How far back in time a terminal's search may follow edges."
    )
    hub_fanout: int = setting(
        24,
        "A process with this many children, or a file or endpoint shared by this many "
        "processes, is a hub: searches stop there and it never joins two campaigns.",
    )
    server_siblings_hours: float = setting(
        1.0,
        "Campaigns entered through children of the same network server (a process that "
        "accepts connections) within this many hours are one campaign (the same service "
        "exploited again); 0 turns this off.",
        maturity=Maturity.INCUBATING,
    )
    max_campaigns: int = setting(
        5_000, "Campaigns kept; past this the least recently active are evicted (counted)."
    )
    max_campaign_age_hours: float = setting(
        72.0, "A campaign with no new signal for this long is evicted (counted)."
    )
    max_incident_nodes: int = setting(100, "Nodes in one incident's attack graph.")
    max_incident_steps: int = setting(120, "Steps in one incident's timeline.")
    story_refresh_seconds: float = setting(
        1.0,
        "An incident no signal touched for this long (data time) has its story rebuilt when "
        "later signals arrive, so activity that raised no signal still joins its graph.",
    )
    weight_informational: float = setting(0.2, "Score of one informational rule signal.")
    weight_low: float = setting(1.0, "Score of one low rule signal.")
    weight_medium: float = setting(3.0, "Score of one medium rule signal.")
    weight_high: float = setting(8.0, "Score of one high rule signal.")
    weight_critical: float = setting(15.0, "Score of one critical rule signal.")
    anomaly_weight: float = setting(
        3.0, "Score of one anomaly signal per unit of score/threshold (capped at 3 units)."
    )
    corroborate_anomalies: bool = setting(
        True,
        "An anomaly signal counts toward a campaign's score and the incident rule only when "
        "corroborated: its process runs in a raising lineage (a server's child, a downloaded "
        "file, remote input) or the campaign holds a rule signal of level medium or above "
        "(after lineage context). "
        "Uncorroborated, it stays with the campaign (and joins its incident once something "
        "corroborates it) but makes no incident alone; false counts every anomaly signal.",
    )
    stage_bonus: float = setting(
        0.5, "Each kill-chain stage beyond the first multiplies the score by (1 + this)."
    )

    def level_weight(self, level: str) -> float:
        """The score of one rule signal of ``level`` (unknown levels count as low)."""
        weights = {
            "informational": self.weight_informational,
            "low": self.weight_low,
            "medium": self.weight_medium,
            "high": self.weight_high,
            "critical": self.weight_critical,
        }
        return weights.get(level, self.weight_low)


class RuleChoice(StrEnum):
    AUTO = "auto"
    DEFAULT = "default"
    SCORE = "score"


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentSettings:
    rule: RuleChoice = setting(
        RuleChoice.AUTO,
        "Which campaigns are incidents: `default` (a high or critical signal, or a medium one "
        "with distinct behaviours over 2+ tactics, signals a lowering context explained left "
        "out), `score` (a campaign score of at least `min_score`), or `auto` (the "
        "rule `provarmor calibrate` stored in the loaded model bundle, else `default`).",
    )
    min_score: float = setting(0.0, "The campaign score threshold of rule `score` (above 0).")

    def __post_init__(self) -> None:
        if self.rule is RuleChoice.SCORE and self.min_score <= 0:
            raise ConfigError(
                "rule `score` needs a threshold above 0", location="incident.min_score"
            )
        if self.rule is not RuleChoice.SCORE and self.min_score:
            raise ConfigError(
                f"a threshold is only read with rule `score` (rule is `{self.rule}`)",
                location="incident.min_score",
            )
