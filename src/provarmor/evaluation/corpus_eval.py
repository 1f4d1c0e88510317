"""False incidents on the real-world benign corpus (:mod:`provarmor.evaluation.corpus`), with the
shipped defaults, reported apart from the lab's benign runs.

Every chunk is benign: each incident is a false one. The configurations:

* ``rules``: the bundled Sigma rules and the default incident rule. Rules learn nothing, so
  every chunk is test data for them; the totals count the ``test`` chunks, like the others.
  ``retired`` chunks are listed but not run; ``development`` chunks are scored like test
  chunks and reported apart.
* ``model``: the anomaly model the host's learning mode enables
  (:class:`~provarmor.detection.anomaly.learning.Learner`, the agent's and the manager's,
  with the shipped learning settings): the ``learning`` and ``calibration`` chunks, in
  the order they were recorded, are one learning window in event time; learning mode
  trains on it and calibrates the threshold on the window's held-out tail
  (``learning.validation_fraction``), as a host does when its window closes. Scored, with
  the default incident rule, on the ``development`` and ``test`` chunks only, which must
  come after the window. Nothing is tuned on a test chunk.
* ``both``: rules and that model.

The model is learned once per seed; figures are mean ± std over the seeds. A seed whose model
equals an earlier seed's in everything scoring reads (the counting model is deterministic;
the seed is only recorded) reuses that seed's results instead of running them again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain, islice
from pathlib import Path

from provarmor.detection.anomaly.learning import Learner
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import LearningSettings, TrainingSettings
from provarmor.detection.sigma.ruleset import RuleSet
from provarmor.evaluation.corpus import (
    EVALUATED_ROLES,
    SCORED_ROLES,
    WINDOW_ROLES,
    RecordingInfo,
    read_manifest,
    read_recording,
)
from provarmor.evaluation.dataset import Dataset, UnlabelledDataset, load_dataset
from provarmor.evaluation.scoring import mean_std
from provarmor.model.errors import ConfigError
from provarmor.model.incident import Incident
from provarmor.model.time_units import ns_to_hours, ns_to_seconds
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis, compile_rules

CONFIGURATIONS = ("rules", "model", "both")


@dataclass(frozen=True, slots=True)
class Chunk:
    name: str
    role: str
    dataset: Dataset
    recording: RecordingInfo

    @property
    def hours(self) -> float:
        meta = self.dataset.meta
        return ns_to_hours(max(meta.ended_ns - meta.started_ns, 0))


@dataclass(frozen=True, slots=True)
class FalseIncident:
    configuration: str
    seed: int
    chunk: str
    title: str
    severity: str
    score: float
    root_cause: str
    """The root cause's program and command line (what context must explain)."""
    processes: int


@dataclass(slots=True)
class ChunkResult:
    chunk: str
    role: str
    hours: float
    events: int
    incidents: dict[str, list[int]] = field(default_factory=dict)
    """Per configuration, the chunk's false incidents for each seed (one entry for rules)."""


@dataclass(slots=True)
class CorpusReport:
    chunks: list[ChunkResult] = field(default_factory=list)
    incidents: list[FalseIncident] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    learning_processes: int = 0
    """Processes the learning window trained on (before its held-out tail)."""
    calibration_processes: int = 0
    """Processes of the window's held-out tail that calibrated the threshold."""
    learning_window_seconds: float = 0.0
    thresholds: list[float] = field(default_factory=list)

    def hours(self, roles: Sequence[str] = ("test",)) -> float:
        return sum(c.hours for c in self.chunks if c.role in roles)

    @property
    def test_hours(self) -> float:
        return self.hours()

    def totals(self, configuration: str, roles: Sequence[str] = ("test",)) -> list[int]:
        """The false incidents of ``configuration`` on the chunks of ``roles``, per seed."""
        chunks = [c for c in self.chunks if c.role in roles and configuration in c.incidents]
        runs = min((len(c.incidents[configuration]) for c in chunks), default=0)
        return [sum(c.incidents[configuration][i] for c in chunks) for i in range(runs)]

    def per_host_hour(
        self, configuration: str, roles: Sequence[str] = ("test",)
    ) -> tuple[float, float] | None:
        """False incidents per host-hour on the chunks of ``roles``: mean and std over seeds."""
        hours = self.hours(roles)
        totals = self.totals(configuration, roles)
        if not hours or not totals:
            return None
        return mean_std([total / hours for total in totals])


def load_corpus(path: Path) -> list[Chunk]:
    manifest = read_manifest(path)
    if not manifest.chunks:
        raise ConfigError("the corpus lists no chunks", location=str(path))
    return [
        Chunk(
            name=entry.path,
            role=entry.role,
            dataset=load_dataset(path / entry.path),
            recording=read_recording(path / entry.path),
        )
        for entry in manifest.chunks
    ]


def learn_model(
    window: Sequence[Dataset | UnlabelledDataset],
    following: Dataset | UnlabelledDataset,
    *,
    settings: LearningSettings,
    training: TrainingSettings,
) -> AnomalyModel:
    """The model learning mode enables after a window made of ``window`` (benign datasets,
    in recording order).

    The window opens at the first event and ends where the last of ``window`` was recorded
    to; as on a host, it closes when the stream clock passes its end, here at the first
    event of ``following`` (recorded after the window: that event belongs to the next
    window, and is only read to close this one). A window learning mode cannot train on is
    a :class:`ConfigError` with the learner's reason."""
    end = max(d.meta.ended_ns for d in window)
    stream = chain(*(d.events() for d in window), islice(following.events(), 1))
    learner: Learner | None = None
    for event in stream:
        if learner is None:
            micros = -(-(end - event.timestamp) // 1_000)  # the window reaches ``end``
            learner = Learner(replace(settings, window_seconds=micros / 1e6), training=training)
        learner.observe(event)
    trained = learner.take_trained() if learner is not None else []
    if not trained:
        reason = learner.waiting if learner is not None and learner.waiting else ""
        raise ConfigError(
            f"learning mode enabled no model on {', '.join(d.path.name for d in window)} "
            f"before {following.path.name}" + (f": {reason}" if reason else "")
        )
    return trained[0]


def _run(plan: AnalysisPlan, chunk: Chunk, *, configuration: str, seed: int) -> list[FalseIncident]:
    analysis = build_analysis(plan)
    result = analysis.collect(chunk.dataset.events())
    return [
        FalseIncident(
            configuration=configuration,
            seed=seed,
            chunk=chunk.name,
            title=incident.title,
            severity=incident.severity,
            score=incident.score,
            root_cause=_describe_root(incident),
            processes=sum(1 for node in incident.nodes if node.kind == "process"),
        )
        for incident in result.incidents()
    ]


def _describe_root(incident: Incident) -> str:
    for node in incident.nodes:
        if node.id == incident.root_cause:
            return node.command_line or node.executable or node.path or node.label
    return incident.root_cause


def evaluate_corpus(
    path: Path,
    *,
    rules: Sequence[Path],
    seeds: Sequence[int],
    configurations: Sequence[str] = CONFIGURATIONS,
    progress: Callable[[str], None] = lambda line: None,
) -> CorpusReport:
    unknown = set(configurations) - set(CONFIGURATIONS)
    if unknown:
        raise ConfigError(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    chunks = load_corpus(path)
    report = CorpusReport(
        chunks=[
            ChunkResult(chunk=c.name, role=c.role, hours=c.hours, events=c.dataset.meta.events)
            for c in chunks
        ],
        seeds=list(seeds),
    )
    by_name = {result.chunk: result for result in report.chunks}
    ruleset = compile_rules(rules) if rules else None
    if "rules" in configurations:
        for chunk in (c for c in chunks if c.role in EVALUATED_ROLES):
            found = _run(AnalysisPlan(ruleset=ruleset), chunk, configuration="rules", seed=0)
            by_name[chunk.name].incidents["rules"] = [len(found)]
            report.incidents += found
            progress(f"rules on {chunk.name}: {len(found)} incident(s)")
    learned = [c for c in configurations if c != "rules"]
    if not learned:
        return report
    in_time = sorted(chunks, key=lambda c: c.dataset.meta.started_ns)  # the recording order
    window = [c for c in in_time if c.role in WINDOW_ROLES]
    tests = [c for c in in_time if c.role in SCORED_ROLES]
    roles = {c.role for c in chunks}
    if not set(WINDOW_ROLES) <= roles or not tests:
        raise ConfigError(
            f"the model needs learning, calibration and test (or development) chunks; this "
            f"corpus has {', '.join(sorted(roles))} (--configurations rules runs the rules alone)",
            location=str(path),
        )
    window_end = max(c.dataset.meta.ended_ns for c in window)
    early = [c.name for c in tests if c.dataset.meta.started_ns < window_end]
    if early:
        raise ConfigError(
            f"{', '.join(early)} started before the learning window ended (the model is "
            f"scored only on chunks recorded after it)",
            location=str(path),
        )
    scored: list[tuple[AnomalyModel, dict[tuple[str, str], list[FalseIncident]]]] = []
    for seed in seeds:
        model = learn_model(
            [c.dataset for c in window],
            tests[0].dataset,
            settings=LearningSettings(),
            training=TrainingSettings(seed=seed),
        )
        report.learning_processes = int(model.metadata["training_processes"])
        report.calibration_processes = int(model.metadata["validation_processes"])
        start, end = model.metadata["learned_window"]
        report.learning_window_seconds = ns_to_seconds(int(end) - int(start))
        report.thresholds.append(model.threshold)
        progress(
            f"seed {seed}: learning mode enabled model version "
            f"{model.metadata['model_version']}, threshold {model.threshold:.3f}"
        )
        same = next((found for earlier, found in scored if _same_model(earlier, model)), None)
        if same is not None:
            progress(f"seed {seed}: the same model as an earlier seed; its results are reused")
        results: dict[tuple[str, str], list[FalseIncident]] = {}
        for configuration in learned:
            plan = _plan(configuration, ruleset=ruleset, model=model)
            for chunk in tests:
                key = (configuration, chunk.name)
                if same is not None:
                    found = [replace(i, seed=seed) for i in same[key]]
                else:
                    found = _run(plan, chunk, configuration=configuration, seed=seed)
                results[key] = found
                by_name[chunk.name].incidents.setdefault(configuration, []).append(len(found))
                report.incidents += found
                progress(f"seed {seed} {configuration} on {chunk.name}: {len(found)} incident(s)")
        scored.append((model, results))
    return report


def _same_model(a: AnomalyModel, b: AnomalyModel) -> bool:
    """Equal in everything scoring reads (the metadata records the seed and the time)."""
    return replace(a, metadata={}) == replace(b, metadata={})


def _plan(configuration: str, *, ruleset: RuleSet | None, model: AnomalyModel) -> AnalysisPlan:
    return AnalysisPlan(ruleset=ruleset if configuration == "both" else None, model=model)
