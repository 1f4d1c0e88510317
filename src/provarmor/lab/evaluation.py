"""``provarmor eval``: how well detectors do on labelled lab datasets.

Detectors see only each dataset's events; labels are read afterwards to score what they
said. Per dataset and in total:

* **incident-level detection**: attack datasets with at least one incident (one incident
  per campaign is the goal); **false incidents per benign host-hour**;
* **alert-level detection**: the same with alerts instead of incidents (rules alone);
* **node-level precision and recall**: processes the detectors flagged against the
  attacker's processes (the lab's own servers are left out);
* **ADP** (attack detection vs precision area): alerts are thresholded by severity; each
  threshold gives (share of attacks detected, precision of flagged processes); ADP is the
  area under precision over detection, from (0, 1) to the last point (1.0 is perfect);
* **technique coverage**: the scenario's ATT&CK techniques named by true alerts (either
  numbering of a renumbered technique counts);
* **detection latency**: from the first attack step to the first true alert's event.

Until an incident builder exists every incident count is zero, and the report says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from provarmor.detection.engine import Detector, detect
from provarmor.lab.dataset import Dataset
from provarmor.model.alert import Alert
from provarmor.model.attack import AttackTable, load_attack_table
from provarmor.model.event import Event

LEVELS = ("informational", "low", "medium", "high", "critical")
INFRA_START_SLACK_NS = 2_000_000_000


@dataclass(slots=True, kw_only=True)
class DatasetScore:
    name: str
    kind: str
    seed: int
    hours: float
    events: int
    alerts: int = 0
    true_alerts: int = 0
    incidents: int = 0
    detected: bool = False
    """Attack datasets: at least one true alert."""
    flagged: set[str] = field(default_factory=set)
    malicious: set[str] = field(default_factory=set)
    techniques_expected: set[str] = field(default_factory=set)
    techniques_found: set[str] = field(default_factory=set)
    latency_s: float | None = None
    alerts_by_level: dict[str, list[Alert]] = field(default_factory=dict)

    @property
    def precision(self) -> float | None:
        return len(self.flagged & self.malicious) / len(self.flagged) if self.flagged else None

    @property
    def recall(self) -> float | None:
        if not self.malicious:
            return None
        return len(self.flagged & self.malicious) / len(self.malicious)


@dataclass(slots=True)
class EvalReport:
    datasets: list[DatasetScore]
    adp: float
    incident_builder: bool = False

    def totals(self) -> dict[str, float | int | None]:
        attacks = [d for d in self.datasets if d.kind == "scenario"]
        benign = [d for d in self.datasets if d.kind == "benign"]
        flagged = (
            set().union(*(tag(d, d.flagged) for d in self.datasets)) if self.datasets else set()
        )
        malicious = (
            set().union(*(tag(d, d.malicious) for d in self.datasets)) if self.datasets else set()
        )
        hours = sum(d.hours for d in benign)
        latencies = sorted(d.latency_s for d in attacks if d.latency_s is not None)
        expected = sum(len(d.techniques_expected) for d in attacks)
        return {
            "attack_datasets": len(attacks),
            "benign_host_hours": round(hours, 4),
            "incident_detection": sum(1 for d in attacks if d.incidents) / len(attacks)
            if attacks
            else None,
            "false_incidents_per_host_hour": (
                sum(d.incidents for d in benign) / hours if hours else None
            ),
            "alert_detection": sum(1 for d in attacks if d.detected) / len(attacks)
            if attacks
            else None,
            "false_alerts_per_host_hour": (
                sum(d.alerts for d in benign) / hours if hours else None
            ),
            "node_precision": len(flagged & malicious) / len(flagged) if flagged else None,
            "node_recall": len(flagged & malicious) / len(malicious) if malicious else None,
            "adp": round(self.adp, 4),
            "technique_coverage": (
                sum(len(d.techniques_found) for d in attacks) / expected if expected else None
            ),
            "latency_p50_s": latencies[len(latencies) // 2] if latencies else None,
            "latency_max_s": latencies[-1] if latencies else None,
        }


def tag(score: DatasetScore, ids: set[str]) -> set[str]:
    """Entity ids made unique across datasets."""
    return {f"{score.name}/{score.seed}/{entity}" for entity in ids}


def _infrastructure(dataset: Dataset, starts: dict[str, tuple[int, int]]) -> set[str]:
    infra = {(p.pid, p.start_ns) for p in dataset.truth.infrastructure}
    return {
        entity
        for entity, (pid, start) in starts.items()
        if any(
            pid == i_pid and abs(start - i_start) <= INFRA_START_SLACK_NS
            for i_pid, i_start in infra
        )
    }


def _technique_ids(alert: Alert) -> set[str]:
    ids = set()
    for ref in alert.techniques:
        ids.add(ref.id.upper())
        if ref.same_as:
            ids.add(ref.same_as.upper())
    return ids


def score_dataset(
    dataset: Dataset, detectors: Sequence[Detector], *, attack: AttackTable
) -> DatasetScore:
    meta, truth = dataset.meta, dataset.truth
    score = DatasetScore(
        name=meta.name,
        kind=meta.kind,
        seed=meta.seed,
        hours=max(truth.ended_ns - truth.started_ns, 0) / 3.6e12,
        events=meta.events,
        malicious=set(dataset.labels.processes),
    )
    starts: dict[str, tuple[int, int]] = {}

    def events() -> Iterator[Event]:
        for event in dataset.events():
            process = event.process
            if process.entity_id not in starts:
                starts[process.entity_id] = (process.pid, process.start)
            yield event

    alerts = list(detect(detectors, events()))
    infra = _infrastructure(dataset, starts)
    malicious = score.malicious
    first_true: int | None = None
    for alert in alerts:
        processes = set(alert.process_entity_ids) - infra
        score.alerts += 1
        score.alerts_by_level.setdefault(alert.level or "informational", []).append(alert)
        score.flagged |= processes
        if processes & malicious:
            score.true_alerts += 1
            found = _technique_ids(alert)
            score.techniques_found |= found
            if first_true is None or alert.first_timestamp < first_true:
                first_true = alert.first_timestamp
    expected = set()
    for technique in truth.techniques:
        expected.add(technique.id.upper())
    score.techniques_expected = expected
    score.techniques_found &= _with_aliases(expected, attack)
    score.techniques_found = {
        t for t in expected if _with_aliases({t}, attack) & score.techniques_found
    }
    score.detected = meta.kind == "scenario" and score.true_alerts > 0
    if first_true is not None and truth.attack_start_ns:
        score.latency_s = max(first_true - truth.attack_start_ns, 0) / 1e9
    return score


def _with_aliases(ids: set[str], attack: AttackTable) -> set[str]:
    out = set(ids)
    for technique_id in ids:
        ref = attack.technique_ref(technique_id)
        if ref is not None and ref.same_as:
            out.add(ref.same_as.upper())
    return out


def adp(scores: Sequence[DatasetScore]) -> float:
    """Area under precision (y) over attack detection rate (x), thresholding alerts by level."""
    attacks = [s for s in scores if s.kind == "scenario"]
    if not attacks:
        return 0.0
    points = [(0.0, 1.0)]
    for index in range(len(LEVELS) - 1, -1, -1):
        kept = set(LEVELS[index:])
        detected = 0
        flagged: set[str] = set()
        malicious: set[str] = set()
        for score in scores:
            processes = {
                p
                for level in kept
                for alert in score.alerts_by_level.get(level, ())
                for p in alert.process_entity_ids
            }
            processes = tag(score, processes)
            flagged |= processes
            malicious |= tag(score, score.malicious)
            if score.kind == "scenario" and processes & tag(score, score.malicious):
                detected += 1
        precision = len(flagged & malicious) / len(flagged) if flagged else 1.0
        points.append((detected / len(attacks), precision))
    points.sort()
    area = 0.0
    for (x0, y0), (x1, y1) in pairwise(points):
        area += (x1 - x0) * (y0 + y1) / 2
    return area


def evaluate(
    datasets: Sequence[Dataset],
    detectors_for: Callable[[], Sequence[Detector]],
) -> EvalReport:
    """Score every dataset with fresh detectors (no state carried between datasets)."""
    attack = load_attack_table()
    scores = [score_dataset(d, detectors_for(), attack=attack) for d in datasets]
    return EvalReport(datasets=scores, adp=adp(scores))
