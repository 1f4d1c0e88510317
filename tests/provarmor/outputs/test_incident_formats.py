from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import msgspec

from provarmor.model.attack import AttackRef
from provarmor.model.incident import Incident, IncidentEdge, IncidentNode, NodeRole
from provarmor.outputs.incident_formats import (
    INCIDENT_FORMATS,
    incident_dot,
    incident_json,
    incident_svg,
    ocsf_incident_finding,
)


def sample(version: int = 1) -> Incident:
    return Incident(
        id="inc-c1",
        campaign_id="c1",
        host_id="h1",
        title='Shell <"spawned"> & more',
        summary="A shell started by python3 ran curl & chmod.",
        severity="critical",
        score=40.0,
        first_ts=1_000_000_000,
        last_ts=2_000_000_000,
        updated_ts=2_000_000_000,
        root_cause="p1",
        version=version,
        nodes=(
            IncidentNode(
                id="p1",
                kind="process",
                label="/bin/sh",
                role=NodeRole.ROOT_CAUSE,
                pid=7,
                command_line="sh -c 'id && echo <x>'",
            ),
            IncidentNode(id="p2", kind="process", label="/usr/bin/curl", role=NodeRole.TERMINAL),
            IncidentNode(id="f1", kind="file", label="/tmp/.x/a&b", role=NodeRole.IMPACTED),
            IncidentNode(id="s1", kind="socket", label="10.0.0.7:8000", role=NodeRole.IMPACTED),
        ),
        edges=(
            IncidentEdge(src="p1", dst="p2", action="fork", first_ts=1, last_ts=1),
            IncidentEdge(src="p2", dst="f1", action="write", first_ts=2, last_ts=3, count=4),
            IncidentEdge(src="p2", dst="s1", action="connect", first_ts=2, last_ts=2),
        ),
        techniques=(AttackRef(id="T1105", name="Ingress Tool Transfer"),),
        tactics=(AttackRef(id="TA0011", name="Command and Control"),),
        alert_ids=("a1", "a2"),
    )


def test_svg_parses_as_xml_and_escapes_text() -> None:
    svg = incident_svg(sample())
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert 'Shell <"spawned"> & more' in texts
    assert len(list(root.iter("{http://www.w3.org/2000/svg}rect"))) == 4


def test_ocsf_incident_finding_has_class_2005_and_update_activity() -> None:
    created = ocsf_incident_finding(sample())
    assert (created["class_uid"], created["category_uid"], created["type_uid"]) == (2005, 2, 200501)
    assert created["severity_id"] == 5
    assert created["metadata"]["profiles"] == ["incident"]  # type: ignore[index]
    assert created["finding_info_list"][0]["uid"] == "inc-c1"  # type: ignore[index]
    assert created["attacks"][0]["technique"]["uid"] == "T1105"  # type: ignore[index]
    updated = ocsf_incident_finding(sample(version=3))
    assert (updated["activity_id"], updated["type_uid"]) == (2, 200502)
    json.dumps(created)


def test_dot_highlights_the_root_cause_and_quotes_labels() -> None:
    dot = incident_dot(sample())
    assert dot.startswith('digraph "inc-c1" {')
    root_line = next(line for line in dot.splitlines() if line.strip().startswith('"p1" ['))
    assert "penwidth=3" in root_line
    assert '\\"spawned\\"' in dot
    assert '"p2" -> "f1" [label="write x4"];' in dot


def test_json_and_the_format_table() -> None:
    document = incident_json(sample())
    assert document["root_cause"] == "p1"
    assert json.loads(json.dumps(document))["nodes"][0]["role"] == "root_cause"
    assert set(INCIDENT_FORMATS) == {"json", "dot", "svg", "ocsf"}


def test_hostile_labels_stay_inside_dot_strings_and_keep_svg_well_formed() -> None:
    hostile = '/tmp/\x1b[2J"]; evil [label="x\\\u202e\x00'
    base = sample()
    incident = msgspec.structs.replace(
        base,
        title=hostile,
        nodes=(
            msgspec.structs.replace(base.nodes[0], label=hostile, command_line=hostile),
            *base.nodes[1:],
        ),
    )
    dot = incident_dot(incident)
    assert not any(char in dot for char in "\x1b\u202e\x00")
    for line in dot.splitlines()[1:-1]:  # quotes pair up once escaped quotes are set aside
        assert line.replace("\\\\", "").replace('\\"', "").count('"') % 2 == 0, line
    assert '\\"]; evil [label=\\"x' in dot

    root = ElementTree.fromstring(incident_svg(incident))  # control characters break XML
    assert "/tmp/\\x1b[2J" in "".join(root.itertext())
