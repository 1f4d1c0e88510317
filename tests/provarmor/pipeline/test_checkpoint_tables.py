"""Chained tables: checkpoints written after every batch carry the history-long tables as a
chain of chunks of changes; any of them restores an analysis that goes on exactly."""

from pathlib import Path

import msgspec
import pytest

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.anomaly.detector import AnomalyDetector
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.evaluation.dataset import load_dataset
from provarmor.graph.store import MemoryGraphStore
from provarmor.pipeline import checkpoint_tables
from provarmor.pipeline.analysis import Analysis, IncidentUpdate, batches
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis, compile_rules
from provarmor.pipeline.checkpoint import Shared, dump_analysis, load_analysis, read_header

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def chunks_of_events():
    events = list(load_dataset(DATA / "lab" / "nodlink-ubuntu-seed1").events())
    return list(batches(events, size=60))


@pytest.fixture(scope="module")
def parts():
    return compile_rules([bundled_rules()]), load_bundle(DATA / "anomaly" / "model-v2.bundle")


def _analysis(parts, store) -> tuple[Analysis, Shared]:
    ruleset, model = parts
    plan = AnalysisPlan(ruleset=ruleset, model=model, replaceable_suppressions=True)
    return build_analysis(plan, store=store), Shared(store=store, ruleset=ruleset, model=model)


def _found(findings) -> list[tuple]:
    return [
        ("incident", f.incident.id, f.incident.version, msgspec.json.encode(f.incident))
        if isinstance(f, IncidentUpdate)
        else ("alert", f.id, f.score)
        for f in findings
    ]


def _anomaly(analysis: Analysis) -> AnomalyDetector:
    found = [
        d._inner
        for context in analysis.detectors
        for d in context.detectors
        if isinstance(d._inner, AnomalyDetector)
    ]
    assert len(found) == 1
    return found[0]


def test_every_checkpoint_of_a_chain_restores_an_analysis_that_goes_on_exactly(
    parts, chunks_of_events, monkeypatch
):
    # compact often, so the chains start over in the middle of the run too
    monkeypatch.setattr(checkpoint_tables, "COMPACT_MIN_BYTES", 4096)
    reference, _ = _analysis(parts, MemoryGraphStore())
    expected = [_found(reference.feed(chunk)) for chunk in chunks_of_events]

    store = MemoryGraphStore()
    first, shared = _analysis(parts, store)
    written, chained, pending = [], set(), 0
    for chunk in chunks_of_events:
        first.feed(chunk)
        written.append(dump_analysis(first, shared, kit="k"))
        header = read_header(written[-1], location="t")
        chained.add(tuple(count for _, count in header.tables))
        pending += bool(_anomaly(first)._pending)
    assert any(count > 2 for counts in chained for count in counts), "chains of changes"
    assert pending, "some checkpoints hold profiles waiting to be scored"
    for cut in range(2, len(chunks_of_events) - 1, 3):
        # the graph as it was at the cut: the same store, replayed up to it
        replay = MemoryGraphStore()
        before, _ = _analysis(parts, replay)
        for chunk in chunks_of_events[: cut + 1]:
            before.feed(chunk)
        _, loading = _analysis(parts, replay)
        restored, _ = load_analysis(written[cut], loading, kit="k", location=f"batch {cut}")
        detector = _anomaly(restored)
        table = detector._table.profiles
        assert all(table.get(key) is p for key, p in detector._pending.items() if key in table)
        found = [_found(restored.feed(chunk)) for chunk in chunks_of_events[cut + 1 :]]
        assert found == expected[cut + 1 :], f"restored after batch {cut}"
