"""``provarmor eval``: how well the analysis does on labelled lab datasets.

Each dataset runs through a fresh analysis pipeline (graph, detectors, incident engine) that
sees only its events; labels are read afterwards to score what it said. Per dataset and in
total:

* **incident-level detection**: attack datasets with at least one true incident (one holding
  an attacker process), and with exactly one (the goal: one incident per campaign);
  **false incidents per benign host-hour** (every incident of a benign run), and incidents
  without attacker processes in attack runs (benign background activity);
* **alert-level detection**: the same with raw signals instead of incidents;
* **node-level precision and recall**: the processes in incident graphs against the
  attacker's processes (the lab's own servers are left out);
* **ADP** (attack detection vs precision area): incidents are thresholded by score; each
  threshold gives (share of attacks detected, precision of flagged processes); ADP is the
  area under precision over detection, from (0, 1) to the last point (1.0 is perfect);
* **technique coverage**: the scenario's ATT&CK techniques named by true incidents or true
  alerts (either numbering of a renumbered technique counts);
* **latency**: of every update of a true incident, from the earliest signal it took in to
  the update (see :class:`provarmor.pipeline.analysis.IncidentUpdate`);
* **containment**, for datasets whose recording agent responded (``actions.jsonl``): see
  :mod:`provarmor.evaluation.containment`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from provarmor.evaluation.containment import ContainmentScore, score_containment, tracker_for
from provarmor.evaluation.dataset import Dataset
from provarmor.model.attack import AttackRef, AttackTable, load_attack_table
from provarmor.model.event import Event
from provarmor.model.incident import Incident
from provarmor.model.time_units import ns_to_hours, seconds_to_ns
from provarmor.pipeline.analysis import Analysis

INFRA_START_SLACK_NS = seconds_to_ns(2)


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
    true_incidents: int = 0
    alert_detected: bool = False
    """Attack datasets: at least one signal on an attacker process."""
    flagged: set[str] = field(default_factory=set)
    """Processes in incident graphs (the lab's infrastructure left out)."""
    malicious: set[str] = field(default_factory=set)
    techniques_expected: set[str] = field(default_factory=set)
    techniques_found: set[str] = field(default_factory=set)
    latencies_s: list[float] = field(default_factory=list)
    ranked: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    """``(incident score, its processes)`` for every incident: the input of :func:`adp`."""
    containment: ContainmentScore | None = None
    """Datasets recorded with automatic response: how the run was contained."""

    @property
    def detected(self) -> bool:
        return self.kind == "scenario" and self.true_incidents > 0

    @property
    def false_incidents(self) -> int:
        return self.incidents - self.true_incidents

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

    def totals(self) -> dict[str, float | int | None]:
        attacks = [d for d in self.datasets if d.kind == "scenario"]
        benign = [d for d in self.datasets if d.kind == "benign"]
        flagged = set().union(*(tag(d, d.flagged) for d in self.datasets))
        malicious = set().union(*(tag(d, d.malicious) for d in self.datasets))
        hours = sum(d.hours for d in benign)
        latencies = sorted(x for d in attacks for x in d.latencies_s)
        expected = sum(len(d.techniques_expected) for d in attacks)
        return {
            "attack_datasets": len(attacks),
            "benign_host_hours": round(hours, 4),
            "incident_detection": _share(attacks, lambda d: d.true_incidents > 0),
            "one_incident": _share(attacks, lambda d: d.true_incidents == 1),
            "false_incidents_per_host_hour": (
                sum(d.incidents for d in benign) / hours if hours else None
            ),
            "false_incidents_in_attack_runs": sum(d.false_incidents for d in attacks),
            "alert_detection": _share(attacks, lambda d: d.alert_detected),
            "false_alerts_per_host_hour": sum(d.alerts for d in benign) / hours if hours else None,
            "node_precision": len(flagged & malicious) / len(flagged) if flagged else None,
            "node_recall": len(flagged & malicious) / len(malicious) if malicious else None,
            "adp": round(self.adp, 4),
            "technique_coverage": (
                sum(len(d.techniques_found) for d in attacks) / expected if expected else None
            ),
            "latency_p50_s": _quantile(latencies, 0.5),
            "latency_p99_s": _quantile(latencies, 0.99),
            **containment_totals(self.datasets),
        }


CONTAINMENT_METRICS = (
    "contained",
    "attack_to_incident_s",
    "incident_to_containment_s",
    "attack_to_containment_s",
    "attacker_processes_after",
    "attacker_connections_after",
    "non_attack_process_actions",
    "firewall_actions",
    "connections_after_firewall",
    "non_attack_blocks",
    "non_attack_file_actions",
)


def _containment_values(score: ContainmentScore) -> dict[str, float | None]:
    return {
        "contained": 1.0 if score.contained else 0.0,
        "attack_to_incident_s": score.attack_to_incident_s,
        "incident_to_containment_s": score.incident_to_containment_s,
        "attack_to_containment_s": score.attack_to_containment_s,
        "attacker_processes_after": (
            None
            if score.attacker_processes_after is None
            else float(len(score.attacker_processes_after))
        ),
        "attacker_connections_after": (
            None
            if score.attacker_connections_after is None
            else float(score.attacker_connections_after)
        ),
        "non_attack_process_actions": float(score.non_attack_process_actions),
        "firewall_actions": float(score.firewall_actions),
        "connections_after_firewall": (
            None
            if score.connections_after_firewall is None
            else float(score.connections_after_firewall)
        ),
        "non_attack_blocks": float(score.non_attack_blocks),
        "non_attack_file_actions": float(score.non_attack_file_actions),
    }


def containment_totals(scores: Sequence[DatasetScore]) -> dict[str, float | int | None]:
    """Over every dataset recorded with automatic response (none: no keys at all)."""
    runs = [s.containment for s in scores if s.containment is not None]
    if not runs:
        return {}
    to_contain = sorted(
        r.incident_to_containment_s for r in runs if r.incident_to_containment_s is not None
    )
    from_attack = sorted(
        r.attack_to_containment_s for r in runs if r.attack_to_containment_s is not None
    )
    return {
        "response_runs": len(runs),
        "contained": sum(1 for r in runs if r.contained) / len(runs),
        "incident_to_containment_p50_s": _quantile(to_contain, 0.5),
        "incident_to_containment_p99_s": _quantile(to_contain, 0.99),
        "attack_to_containment_p50_s": _quantile(from_attack, 0.5),
        "attack_to_containment_p99_s": _quantile(from_attack, 0.99),
        "attacker_processes_after_containment": sum(
            len(r.attacker_processes_after or ()) for r in runs
        ),
        "attacker_connections_after_containment": sum(
            r.attacker_connections_after or 0 for r in runs
        ),
        "non_attack_process_actions": sum(r.non_attack_process_actions for r in runs),
        "firewall_runs": sum(1 for r in runs if r.firewall_actions),
        "connections_after_firewall": sum(r.connections_after_firewall or 0 for r in runs),
        "non_attack_blocks": sum(r.non_attack_blocks for r in runs),
        "non_attack_file_actions": sum(r.non_attack_file_actions for r in runs),
    }


def containment_summary(
    scores: Sequence[DatasetScore],
) -> dict[str, dict[str, tuple[float, float] | None]]:
    """Mean and standard deviation over seeds of each containment figure, per scenario and
    in total (``contained`` is the share of runs contained)."""
    groups: dict[str, list[ContainmentScore]] = {}
    for score in scores:
        if score.containment is not None:
            groups.setdefault(score.name, []).append(score.containment)
    if not groups:
        return {}
    groups["total"] = [run for runs in list(groups.values()) for run in runs]
    return {
        name: {
            metric: mean_std([_containment_values(run)[metric] for run in runs])
            for metric in CONTAINMENT_METRICS
        }
        for name, runs in groups.items()
    }


def _share(scores: Sequence[DatasetScore], test: Callable[[DatasetScore], bool]) -> float | None:
    return sum(1 for d in scores if test(d)) / len(scores) if scores else None


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def tag(score: DatasetScore, ids: set[str] | frozenset[str]) -> set[str]:
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


def _technique_ids(refs: Sequence[AttackRef]) -> set[str]:
    ids = set()
    for ref in refs:
        ids.add(ref.id.upper())
        if ref.same_as:
            ids.add(ref.same_as.upper())
    return ids


def _processes(incident: Incident) -> frozenset[str]:
    return frozenset(node.id for node in incident.nodes if node.kind == "process")


def score_dataset(dataset: Dataset, analysis: Analysis, *, attack: AttackTable) -> DatasetScore:
    """Run ``analysis`` over the dataset's events, then score it against the labels."""
    meta, truth = dataset.meta, dataset.truth
    score = DatasetScore(
        name=meta.name,
        kind=meta.kind,
        seed=meta.seed,
        hours=ns_to_hours(max(truth.ended_ns - truth.started_ns, 0)),
        events=meta.events,
        malicious=set(dataset.labels.processes),
    )
    starts: dict[str, tuple[int, int]] = {}
    tracker = tracker_for(dataset)

    def events() -> Iterator[Event]:
        for event in dataset.events():
            process = event.process
            if process.entity_id not in starts:
                starts[process.entity_id] = (process.pid, process.start)
            if tracker is not None:
                tracker.see(event)
            yield event

    result = analysis.collect(events())
    infra = _infrastructure(dataset, starts)
    malicious = score.malicious = score.malicious - infra
    found: set[str] = set()
    for alert in result.alerts:
        score.alerts += 1
        if set(alert.process_entity_ids) & malicious:
            score.true_alerts += 1
            found |= _technique_ids(alert.techniques)
    true_ids: set[str] = set()
    for incident in result.incidents():
        processes = _processes(incident) - infra
        score.incidents += 1
        score.flagged |= processes
        score.ranked.append((incident.score, frozenset(processes)))
        if processes & malicious:
            score.true_incidents += 1
            true_ids.add(incident.id)
            found |= _technique_ids(incident.techniques)
    score.latencies_s = [u.latency_s for u in result.updates if u.incident.id in true_ids]
    expected = {technique.id.upper() for technique in truth.techniques}
    score.techniques_expected = expected
    score.techniques_found = {t for t in expected if _with_aliases({t}, attack) & found}
    score.alert_detected = meta.kind == "scenario" and score.true_alerts > 0
    if tracker is not None:
        score.containment = score_containment(dataset, tracker, malicious=malicious)
    return score


def _with_aliases(ids: set[str], attack: AttackTable) -> set[str]:
    out = set(ids)
    for technique_id in ids:
        ref = attack.technique_ref(technique_id)
        if ref is not None and ref.same_as:
            out.add(ref.same_as.upper())
    return out


def adp(scores: Sequence[DatasetScore]) -> float:
    """Area under precision (y) over attack detection rate (x), thresholding incidents by
    their score."""
    attacks = [s for s in scores if s.kind == "scenario"]
    if not attacks:
        return 0.0
    thresholds = sorted({value for s in scores for value, _ in s.ranked}, reverse=True)
    malicious = set().union(*(tag(s, s.malicious) for s in scores))
    points = [(0.0, 1.0)]
    for threshold in thresholds:
        detected = 0
        flagged: set[str] = set()
        for score in scores:
            kept = tag(score, set().union(*(p for v, p in score.ranked if v >= threshold)))
            flagged |= kept
            if score.kind == "scenario" and kept & tag(score, score.malicious):
                detected += 1
        precision = len(flagged & malicious) / len(flagged) if flagged else 1.0
        points.append((detected / len(attacks), precision))
    best: dict[float, float] = {}
    for x, y in points:  # at each detection rate, the best precision some threshold gives
        best[x] = max(best.get(x, 0.0), y)
    points = sorted(best.items())
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(points))


def evaluate(datasets: Sequence[Dataset], analysis_for: Callable[[], Analysis]) -> EvalReport:
    """Score every dataset with a fresh pipeline (no state carried between datasets)."""
    attack = load_attack_table()
    scores = [score_dataset(d, analysis_for(), attack=attack) for d in datasets]
    return EvalReport(datasets=scores, adp=adp(scores))


def mean_std(values: Sequence[float | None]) -> tuple[float, float] | None:
    """Mean and sample standard deviation of the known values (``None`` when none are)."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return statistics.fmean(known), statistics.stdev(known) if len(known) > 1 else 0.0
