import json

import msgspec

from provarmor.model.alert import Alert
from provarmor.model.attack import AttackRef
from provarmor.outputs.alert_formats import (
    FORMATS,
    ecs_alert,
    falco_envelope,
    ocsf_detection_finding,
)

ALERT = Alert(
    id="r1:e9",
    rule_id="r1",
    rule_title="Download to /tmp then execute",
    level="high",
    description="A file written by curl ran.",
    techniques=(AttackRef(id="T1105", name="Ingress Tool Transfer"),),
    tactics=(AttackRef(id="TA0011", name="Command and Control"),),
    host_id="h1",
    event_ids=("e1", "e9"),
    process_entity_ids=("p1",),
    file_paths=("/tmp/payload",),
    remote_endpoints=("127.0.0.1:8765",),
    first_timestamp=1_700_000_000_000_000_000,
    last_timestamp=1_700_000_000_500_000_000,
    count=2,
)


def test_ecs_alert_has_kind_rule_and_threat():
    doc = ecs_alert(ALERT)
    assert doc["event"]["kind"] == "alert"  # type: ignore[index]
    assert doc["rule"]["id"] == "r1"  # type: ignore[index]
    assert doc["threat"]["technique"][0] == {  # type: ignore[index]
        "id": "T1105",
        "name": "Ingress Tool Transfer",
        "reference": "https://attack.mitre.org/techniques/T1105/",
    }
    assert doc["@timestamp"] == "2023-11-14T22:13:20.500000+00:00"


def test_ocsf_detection_finding_class_and_attacks():
    doc = ocsf_detection_finding(ALERT)
    assert (doc["class_uid"], doc["category_uid"], doc["type_uid"]) == (2004, 2, 200401)
    assert doc["severity_id"] == 4
    info = doc["finding_info"]
    assert info["attacks"][0]["technique"]["uid"] == "T1105"  # type: ignore[index]
    assert info["attacks"][0]["tactic"]["uid"] == "TA0011"  # type: ignore[index]
    assert doc["time"] == 1_700_000_000_500


def test_falco_envelope_priority_and_fields():
    doc = falco_envelope(ALERT)
    assert doc["priority"] == "Error"
    assert doc["time"] == "2023-11-14T22:13:20.500000Z"
    assert "/tmp/payload" in doc["output"]  # type: ignore[operator]


def test_every_format_is_json_serialisable():
    for name, render in FORMATS.items():
        assert json.loads(json.dumps(render(ALERT))), name


def test_every_format_says_which_context_changed_the_alert():
    lowered = msgspec.structs.replace(
        ALERT,
        level="low",
        original_level="high",
        context="package",
        context_effect="lowered",
        context_reason="package transaction: apt-get -> dpkg -> useradd",
    )
    expected = {
        "kind": "package",
        "effect": "lowered",
        "reason": "package transaction: apt-get -> dpkg -> useradd",
        "original_level": "high",
    }
    assert ecs_alert(lowered)["provarmor"] == {"context": expected}
    assert ocsf_detection_finding(lowered)["unmapped"]["context"] == expected  # type: ignore[index]
    assert falco_envelope(lowered)["output_fields"]["provarmor.context"] == expected  # type: ignore[index]
    assert "provarmor" not in ecs_alert(ALERT)
