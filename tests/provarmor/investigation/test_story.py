from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.store import MemoryGraphStore
from provarmor.investigation.incidents import IncidentEngine, IncidentRule
from provarmor.investigation.settings import InvestigationSettings
from provarmor.model.actions import Action
from provarmor.model.alert import Alert
from provarmor.model.attack import load_attack_table
from provarmor.testing.factories import entity, make_event


def test_forward_expansion_shows_a_hub_but_not_its_other_children() -> None:
    # the attack's shell (10) starts a tool (11), which starts a process (21) that becomes
    # a hub (many children): 21 is shown, its children are not; an unrelated daemon (20)
    # is not taken in at all
    events = [
        make_event(Action.EXEC, pid=10, ppid=9, ts=1, exe="/bin/sh"),
        make_event(Action.FORK, pid=11, ppid=10, ts=2, exe="/usr/bin/curl"),
        make_event(Action.EXEC, pid=20, ppid=1, ts=1, exe="/usr/sbin/daemon"),
        *(
            make_event(Action.FORK, pid=100 + i, ppid=20, ts=3 + i, exe="/usr/sbin/daemon")
            for i in range(5)
        ),
        make_event(Action.FORK, pid=21, ppid=11, ts=9, exe="/usr/sbin/busy"),
        *(
            make_event(Action.FORK, pid=200 + i, ppid=21, ts=10 + i, exe="/usr/bin/job")
            for i in range(5)
        ),
    ]
    builder, store = GraphBuilder(), MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True))
    engine = IncidentEngine(
        store, settings=InvestigationSettings(hub_fanout=4), rule=IncidentRule(min_score=1e-9)
    )
    alert = Alert(
        id="a1",
        rule_id="r1",
        rule_title="rule",
        level="high",
        host_id="test-host",
        process_entity_ids=(entity(11),),
        first_timestamp=2,
        last_timestamp=2,
    )
    (incident,) = engine.add_signals([alert])
    pids = {n.pid for n in incident.nodes if n.kind == "process"}
    assert {10, 11, 21} <= pids  # 21 is a hub the attack started: shown
    assert not pids & {200, 201, 202, 203, 204}  # its children are not taken in
    assert not pids & {20, 100}


def _incident_of(events, alerts):
    builder, store = GraphBuilder(), MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True))
    engine = IncidentEngine(
        store, settings=InvestigationSettings(), rule=IncidentRule(min_score=1e-9)
    )
    (incident,) = engine.add_signals(alerts)
    return incident


def test_a_tactic_is_listed_once_under_its_current_name() -> None:
    table = load_attack_table()
    evasion, stealth = table.tactic_ref("defense-evasion"), table.tactic_ref("stealth")
    assert evasion is not None and stealth is not None and evasion.id == stealth.id == "TA0005"
    events = [
        make_event(Action.EXEC, pid=10, ppid=9, ts=1, exe="/bin/sh"),
        make_event(Action.FORK, pid=11, ppid=10, ts=2, exe="/usr/bin/curl"),
    ]
    alerts = [
        Alert(
            id=f"a{number}",
            rule_id=f"r{number}",
            rule_title="rule",
            level="high",
            host_id="test-host",
            tactics=(tactic,),
            process_entity_ids=(entity(11),),
            first_timestamp=2,
            last_timestamp=2,
        )
        for number, tactic in enumerate([evasion, stealth])
    ]
    incident = _incident_of(events, alerts)
    assert [(ref.id, ref.name) for ref in incident.tactics] == [("TA0005", "Stealth")]


def test_a_wildcard_socket_is_not_a_contacted_endpoint() -> None:
    events = [
        make_event(Action.EXEC, pid=10, ppid=9, ts=1, exe="/usr/bin/curl"),
        make_event(Action.CONNECT, pid=10, ts=2, exe="/usr/bin/curl", ip="10.0.0.7", port=443),
        make_event(Action.CONNECT, pid=10, ts=3, exe="/usr/bin/curl", ip="0.0.0.0", port=0),
    ]
    alert = Alert(
        id="a1",
        rule_id="r1",
        rule_title="rule",
        level="high",
        host_id="test-host",
        process_entity_ids=(entity(10),),
        first_timestamp=2,
        last_timestamp=2,
    )
    incident = _incident_of(events, [alert])
    labels = {node.label for node in incident.nodes}
    assert {"0.0.0.0:0", "10.0.0.7:443"} <= labels
    assert list(incident.contacted_endpoints) == ["10.0.0.7:443"]


_LAST_STORY = """
import hashlib, sys
from pathlib import Path
import msgspec
from provarmor.pipeline.analysis import IncidentUpdate
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis
from provarmor.graph.store import MemoryGraphStore
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

events = read_ndjson(Path(sys.argv[1]), report=IngestReport(source="lab"), host=HostContext())
analysis = build_analysis(AnalysisPlan(rules=(bundled_rules(),)), store=MemoryGraphStore())
stories = [f.incident for f in analysis.run(events) if isinstance(f, IncidentUpdate)]
print(stories[-1].version, hashlib.sha256(msgspec.json.encode(stories[-1])).hexdigest())
"""


def test_a_story_is_the_same_in_every_process() -> None:
    """Two processes (string hashes seeded differently) tell the same story of the same
    events, node for node: a worker that takes a host over from another, or restores its
    checkpoint, goes on with the very incident the first one stored."""
    recording = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1"
    told = {
        subprocess.run(
            [sys.executable, "-c", _LAST_STORY, str(recording / "events.ndjson.gz")],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(told) == 1, told
