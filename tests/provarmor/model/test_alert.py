"""The Alert struct: immutable, compact on the wire, round-trips through msgspec."""

from __future__ import annotations

import msgspec
import pytest

from provarmor.model.alert import Alert
from provarmor.model.attack import AttackRef


def make_alert() -> Alert:
    return Alert(
        id="r@e1",
        rule_id="r",
        rule_title="Reverse shell",
        level="high",
        techniques=(AttackRef(id="T1685", name="Disable or Modify Tools", same_as="T1562.001"),),
        tactics=(AttackRef(id="TA0002", name="Execution"),),
        host_id="h",
        event_ids=("e1",),
        process_entity_ids=("h-p1",),
        remote_endpoints=("203.0.113.1:4444",),
        first_timestamp=5,
        last_timestamp=5,
    )


def test_alert_round_trips_and_omits_defaults():
    alert = make_alert()
    encoded = msgspec.json.encode(alert)
    assert b"file_paths" not in encoded
    assert b'"count"' not in encoded  # 1 is the default
    assert msgspec.json.decode(encoded, type=Alert) == alert


def test_alert_is_immutable_and_names_attack():
    alert = make_alert()
    with pytest.raises(AttributeError):
        alert.level = "low"  # type: ignore[misc]
    assert alert.technique_ids == ("T1685",)
    assert alert.tactic_names == ("Execution",)
    assert alert.detector == "sigma"
