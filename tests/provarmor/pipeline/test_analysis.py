import gzip
import os
from pathlib import Path

import msgspec
import pytest

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.detection.suppress import parse_suppressions
from provarmor.evaluation.dataset import load_dataset
from provarmor.graph.read_cache import ReadCachedStore
from provarmor.graph.store import MemoryGraphStore, PruneCursor
from provarmor.investigation.incidents import IncidentEngine
from provarmor.model.actions import Action
from provarmor.model.alert import Alert
from provarmor.pipeline.analysis import Analysis, IncidentUpdate, batches
from provarmor.pipeline.assembly import build_analysis, compile_rules, plan_from_config
from provarmor.pipeline.config import AnalysisConfig
from provarmor.storage.sqlite_graph import SqliteGraphStore
from provarmor.testing.factories import make_event

SECOND = 1_000_000_000
DATA = Path(__file__).resolve().parents[2] / "data"
EXPECTED = DATA / "pipeline" / "expected"
"""What the whole analysis found in the lab recordings, written by the build of the commit
that added it (``PROVARMOR_RECORD_EXPECTED=1`` writes them anew)."""
EXCEPTIONS = """
suppressions:
  - name: lab-runner-archives
    rules: Sensitive locations packed into an archive
    lineage: ["/bin/sh", "*/python3*"]
  - name: accounts-made-with-sudo
    rules: [Local account created]
    executable: /usr/sbin/useradd
    ancestor: /usr/bin/sudo
    user: root
  - name: never-holds
    rules: "*"
    user: nobody
"""


def test_batches_cut_by_size_and_by_event_time():
    events = [make_event(Action.OPEN, pid=2, path="/a", ts=i * SECOND // 10) for i in range(30)]
    sizes = [len(b) for b in batches(events, size=4, seconds=10.0)]
    assert sizes == [4, 4, 4, 4, 4, 4, 4, 2]
    spans = list(batches(events, size=1000, seconds=1.0))
    assert [len(b) for b in spans] == [10, 10, 10]
    assert all(b[-1].timestamp - b[0].timestamp < SECOND for b in spans)
    assert list(batches([], size=3)) == []


class RecordingEngine(IncidentEngine):
    """The real engine, noting what the store held when signals arrived."""

    def __init__(self, store):
        super().__init__(store)
        self.seen: list[tuple[str, bool]] = []
        self._graph = store

    def add_signals(self, signals, *, defer=False):
        for signal in signals:
            for entity in signal.process_entity_ids:
                self.seen.append((entity, self._graph.node(entity) is not None))
        return super().add_signals(signals, defer=defer)


@pytest.fixture(scope="module")
def attack():
    return load_dataset(DATA / "lab" / "nodlink-ubuntu-seed1")


@pytest.fixture(scope="module")
def rules():
    return bundled_rules()


def test_signals_reach_the_engine_after_their_events_are_in_the_store(attack, rules):
    store = MemoryGraphStore()
    engine = RecordingEngine(store)
    sigma, _ = SigmaDetector.from_paths([rules])
    analysis = Analysis(store, detectors=[sigma], engine=engine)
    result = analysis.collect(attack.events())
    assert result.events == attack.meta.events
    assert result.alerts and all(isinstance(a, Alert) for a in result.alerts)
    assert engine.seen and all(present for _, present in engine.seen)
    incidents = result.incidents()
    assert len(incidents) == 1
    (incident,) = incidents
    processes = {node.id for node in incident.nodes if node.kind == "process"}
    assert processes & set(attack.labels.processes)
    updates = [u for u in result.updates if isinstance(u, IncidentUpdate)]
    assert [u.incident.version for u in updates] == sorted(u.incident.version for u in updates)
    assert all(0 <= u.latency_s < 5 for u in updates)
    assert all(u.trigger_ts >= incident.first_ts for u in updates)


def test_feed_and_finish_match_run(attack, rules):
    events = list(attack.events())

    def fresh():
        store = MemoryGraphStore()
        return Analysis(
            store, detectors=[SigmaDetector.from_paths([rules])[0]], engine=IncidentEngine(store)
        )

    whole = fresh().collect(events)
    piecewise = fresh()
    alerts = []
    for batch in batches(events):
        alerts += [f for f in piecewise.feed(batch) if not isinstance(f, IncidentUpdate)]
    alerts += [f for f in piecewise.finish() if not isinstance(f, IncidentUpdate)]
    assert [a.id for a in alerts] == [a.id for a in whole.alerts]
    assert piecewise.graph_counters.events == len(events)


def test_forget_leaves_no_pruned_node_in_the_read_cache(tmp_path):
    raw = SqliteGraphStore(tmp_path / "g.db")
    analysis = Analysis(raw, detectors=[], engine=IncidentEngine(MemoryGraphStore()))
    # what build_analysis does for a persistent store: reads through the cache
    analysis.store = cached = ReadCachedStore(raw)
    analysis.feed([make_event(Action.WRITE, pid=2, exe="/bin/a", path="/tmp/a", ts=1)])
    analysis.finish()
    names = [node.id for node in raw.find_nodes("/tmp/a")]
    assert names and cached.node(names[0]) is not None
    pruned: list[str] = []
    cursor = PruneCursor()
    while True:
        step = raw.prune(100, keep=frozenset(), rows=100, cursor=cursor)
        pruned.extend(step.nodes)
        if step.done:
            break
    assert names[0] in pruned
    analysis.forget(pruned, edges_before=100)
    assert cached.node(names[0]) is None
    raw.close()


@pytest.fixture(scope="module")
def kit():
    return compile_rules([bundled_rules()]), load_bundle(DATA / "anomaly" / "model-v2.bundle")


@pytest.mark.parametrize("shape", ["worker", "detect"])
@pytest.mark.parametrize(
    "recording", ["nodlink-ubuntu-seed1", "tc-browser-dropper-seed1", "benign-seed2"]
)
def test_the_whole_analysis_finds_what_it_found_before(kit, recording, shape):
    """Rules, model, context, exceptions, campaigns and incidents over a real recording give
    the alerts and incident versions stored when this test was added, field for field (the
    speed-ups of the per-event path must not change a result). ``worker``: the manager's and
    the fleet worker's plan (every detector behind a replaceable exception filter, here with
    two exceptions); ``detect``: the command's (repeated rule hits merged)."""
    ruleset, model = kit
    plan = plan_from_config(
        AnalysisConfig(),
        ruleset=ruleset,
        model=model,
        suppressions=parse_suppressions(EXCEPTIONS, source="test") if shape == "worker" else (),
        replaceable_suppressions=shape == "worker",
        merge_repeats=shape == "detect",
    )
    alerts, incidents = [], []
    for finding in build_analysis(plan).run(load_dataset(DATA / "lab" / recording).events()):
        if isinstance(finding, IncidentUpdate):
            incidents.append(finding.incident)
        else:
            alerts.append(finding)
    found = msgspec.json.decode(msgspec.json.encode({"alerts": alerts, "incidents": incidents}))
    fixture = EXPECTED / f"{recording}-{shape}.json.gz"
    if os.environ.get("PROVARMOR_RECORD_EXPECTED"):
        fixture.parent.mkdir(exist_ok=True)
        fixture.write_bytes(gzip.compress(msgspec.json.format(msgspec.json.encode(found)), mtime=0))
    expected = msgspec.json.decode(gzip.decompress(fixture.read_bytes()))
    assert alerts and incidents
    assert [a["id"] for a in found["alerts"]] == [a["id"] for a in expected["alerts"]]
    assert found["alerts"] == expected["alerts"]
    versions = [(i["id"], i.get("version", 1)) for i in found["incidents"]]
    assert versions == [(i["id"], i.get("version", 1)) for i in expected["incidents"]]
    assert found["incidents"] == expected["incidents"]
