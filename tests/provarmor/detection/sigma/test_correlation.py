"""Correlation rules over crafted event sequences: transcripts of hits in, firings out."""

from __future__ import annotations

import pytest

from provarmor.detection.sigma.compiler import RuleInfo
from provarmor.detection.sigma.correlation import (
    CorrelationEngine,
    CorrelationKind,
    CorrelationLimits,
    CorrelationSpec,
    CountCondition,
    Hit,
)
from provarmor.model.actions import Action
from provarmor.testing.factories import make_event

S = 1_000_000_000

BASE_RULES = """
title: su run
name: su_run
id: 0b7a4c52-8a2e-4b1e-9c39-000000000001
logsource: {product: linux, category: process_creation}
detection:
    sel:
        Image|endswith: '/su'
    condition: sel
level: low
tags: [attack.privilege-escalation, attack.t1548]
---
title: whoami run
name: whoami_run
logsource: {product: linux, category: process_creation}
detection:
    sel:
        Image|endswith: '/whoami'
    condition: sel
level: low
---
title: uname run
name: uname_run
logsource: {product: linux, category: process_creation}
detection:
    sel:
        Image|endswith: '/uname'
    condition: sel
level: medium
---
title: wget run
name: wget_run
logsource: {product: linux, category: process_creation}
detection:
    sel:
        Image|endswith: '/wget'
    condition: sel
---
title: chmod run
name: chmod_run
logsource: {product: linux, category: process_creation}
detection:
    sel:
        Image|endswith: '/chmod'
    condition: sel
---
title: outbound connection
name: outbound
logsource: {product: linux, category: network_connection}
detection:
    sel:
        Initiated: 'true'
    condition: sel
"""


def correlation(body: str, *, title: str = "the correlation", extra: str = "") -> str:
    return f"{BASE_RULES}---\ntitle: {title}\nname: corr\n{extra}correlation:\n{body}"


@pytest.fixture
def run(sigma, exec_of):
    """run(rules, steps) -> titles fired per step; a step is (program, user, seconds[, host])."""

    def feed(text, steps, *, flush=True):
        detector = sigma(text)
        fired = []
        for program, user, seconds, *host in steps:
            event = exec_of(
                program,
                exe=f"/usr/bin/{program}",
                user=user,
                ts=seconds * S,
                host=host[0] if host else "test-host",
            )
            fired.append(sorted(a.rule_title for a in detector.on_event(event)))
        if flush:
            fired.append(sorted(a.rule_title for a in detector.flush()))
        return fired

    return feed


EVENT_COUNT = """    type: event_count
    rules: [su_run]
    group-by: [User]
    timespan: 1m
    condition: {gte: 3}
"""


def test_event_count_fires_on_the_third_hit_within_the_timespan(run):
    fired = run(correlation(EVENT_COUNT), [("su", "alice", t) for t in (0, 10, 20, 30)])
    assert fired == [[], [], ["the correlation"], [], []]


def test_event_count_groups_by_user_and_forgets_old_hits(run):
    steps = [
        ("su", "alice", 0),
        ("su", "bob", 5),
        ("su", "alice", 10),
        ("su", "bob", 15),
        ("su", "alice", 100),
        ("su", "alice", 110),
        ("su", "alice", 120),
    ]
    fired = run(correlation(EVENT_COUNT), steps)
    assert fired == [[], [], [], [], [], [], ["the correlation"], []]


def test_referenced_rules_are_silent_unless_generate(run):
    quiet = run(correlation(EVENT_COUNT), [("su", "alice", 0)])
    assert quiet == [[], []]
    loud = run(correlation(EVENT_COUNT + "    generate: true\n"), [("su", "alice", 0)])
    assert loud == [["su run"], []]


def test_correlations_never_mix_hosts(run):
    steps = [("su", "alice", 0, "h1"), ("su", "alice", 1, "h2"), ("su", "alice", 2, "h1")]
    assert run(correlation(EVENT_COUNT), steps) == [[], [], [], []]


def test_correlation_alert_describes_all_hits(sigma, exec_of):
    detector = sigma(correlation(EVENT_COUNT))
    alerts = []
    for pid, seconds in ((10, 0), (11, 5), (12, 9)):
        event = exec_of("su", exe="/usr/bin/su", user="alice", pid=pid, ts=seconds * S)
        alerts += detector.on_event(event)
    (alert,) = alerts
    assert alert.count == 3
    assert (alert.first_timestamp, alert.last_timestamp) == (0, 9 * S)
    assert alert.process_entity_ids == ("test-host-p10", "test-host-p11", "test-host-p12")
    assert len(alert.event_ids) == 3
    assert alert.level == "low"  # inherited from the rule it correlates
    assert alert.technique_ids == ("T1548",)
    assert alert.tactic_names == ("Privilege Escalation",)


def test_value_count_counts_distinct_values(sigma):
    text = correlation(
        "    type: value_count\n    rules: [outbound]\n    group-by: [Image]\n"
        "    timespan: 30s\n    condition: {gte: 3, field: DestinationPort}\n"
    )
    detector = sigma(text)
    fired = []
    for seconds, port in ((0, 22), (1, 22), (2, 80), (3, 80), (4, 443), (5, 8080)):
        event = make_event(
            Action.CONNECT, exe="/tmp/scan", ip="10.0.0.9", port=port, ts=seconds * S
        )
        fired.append(len(detector.on_event(event)))
    assert fired == [0, 0, 0, 0, 1, 0]


TEMPORAL = """    type: temporal
    rules: [whoami_run, uname_run]
    group-by: [User]
    timespan: 5m
"""


def test_temporal_needs_every_rule_within_the_timespan(run):
    assert run(correlation(TEMPORAL), [("uname", "alice", 0), ("whoami", "alice", 60)]) == [
        [],
        ["the correlation"],
        [],
    ]
    assert run(correlation(TEMPORAL), [("uname", "alice", 0), ("uname", "alice", 60)]) == [
        [],
        [],
        [],
    ]
    assert run(correlation(TEMPORAL), [("uname", "alice", 0), ("whoami", "alice", 400)]) == [
        [],
        [],
        [],
    ]
    assert run(correlation(TEMPORAL), [("uname", "alice", 0), ("whoami", "bob", 10)]) == [
        [],
        [],
        [],
    ]


def test_temporal_takes_the_highest_level_when_it_has_none(sigma, exec_of):
    detector = sigma(correlation(TEMPORAL))
    detector.on_event(exec_of("uname", exe="/usr/bin/uname", user="u", ts=0))
    (alert,) = detector.on_event(exec_of("whoami", exe="/usr/bin/whoami", user="u", ts=S))
    assert alert.level == "medium"


TEMPORAL_ORDERED = """    type: temporal_ordered
    rules: [wget_run, chmod_run]
    group-by: [User]
    timespan: 1m
"""


def test_temporal_ordered_needs_the_order(run):
    text = correlation(TEMPORAL_ORDERED)
    assert run(text, [("wget", "u", 0), ("chmod", "u", 10)]) == [[], ["the correlation"], []]
    assert run(text, [("chmod", "u", 0), ("wget", "u", 10)]) == [[], [], []]
    assert run(text, [("wget", "u", 0), ("chmod", "u", 61)]) == [[], [], []]
    assert run(text, [("wget", "u", 0), ("wget", "u", 30), ("chmod", "u", 70)]) == [
        [],
        [],
        ["the correlation"],
        [],
    ]


def test_range_condition_is_judged_when_the_window_ends(run):
    text = correlation(
        "    type: event_count\n    rules: [su_run]\n    group-by: [User]\n"
        "    timespan: 1m\n    condition: {gt: 1, lte: 3}\n"
    )
    assert run(text, [("su", "u", 0), ("su", "u", 10), ("su", "u", 61)]) == [
        [],
        [],
        ["the correlation"],
        [],
    ]
    assert run(text, [("su", "u", t) for t in (0, 1, 2, 3)]) == [[], [], [], [], []]
    assert run(text, [("su", "u", 0), ("su", "u", 10)]) == [[], [], ["the correlation"]]


def test_lt_condition_fires_for_rare_activity(run):
    text = correlation(
        "    type: event_count\n    rules: [su_run]\n    group-by: [User]\n"
        "    timespan: 1m\n    condition: {lt: 2}\n"
    )
    assert run(text, [("su", "rare", 0), ("su", "busy", 1), ("su", "busy", 2)]) == [
        [],
        [],
        [],
        ["the correlation"],
    ]


def test_chained_correlations(run):
    chained = f"""{BASE_RULES}---
title: su burst
name: su_burst
correlation:
    type: event_count
    rules: [su_run]
    group-by: [User]
    timespan: 1m
    condition: {{gte: 2}}
---
title: su burst then wget
correlation:
    type: temporal_ordered
    rules: [su_burst, wget_run]
    group-by: [User]
    timespan: 5m
"""
    steps = [("su", "u", 0), ("su", "u", 5), ("wget", "u", 30)]
    assert run(chained, steps) == [[], [], ["su burst then wget"], []]


def test_aliases_map_group_by_onto_each_rules_field(run):
    text = correlation(
        "    type: temporal\n    rules: [whoami_run, uname_run]\n    group-by: [actor]\n"
        "    timespan: 1m\n    aliases:\n        actor:\n            whoami_run: User\n"
        "            uname_run: User\n"
    )
    assert run(text, [("uname", "u", 0), ("whoami", "u", 1)]) == [[], ["the correlation"], []]


def info(key: str) -> RuleInfo:
    return RuleInfo(
        key=key,
        id="",
        name=key,
        title=key,
        level="",
        description="",
        path="",
        techniques=(),
        tactics=(),
    )


def hit(rule: str, seconds: int, group: str = "g") -> Hit:
    return Hit(
        rule_key=rule,
        timestamp=seconds * S,
        first_timestamp=seconds * S,
        host_id="h",
        event_ids=(f"{rule}-{seconds}",),
        value=lambda name: group,
    )


def spec(condition: dict[str, object], **fields) -> CorrelationSpec:
    return CorrelationSpec(
        info=fields.pop("info", info("c")),
        kind=fields.pop("kind", CorrelationKind.EVENT_COUNT),
        rules=("r",),
        group_by=("User",),
        timespan_ns=fields.pop("timespan_ns", 60 * S),
        condition=CountCondition.from_mapping(condition),
        **fields,
    )


def test_groups_are_bounded_and_evictions_counted():
    engine = CorrelationEngine([spec({"gte": 2})], limits=CorrelationLimits(max_groups=2))
    for seconds, group in enumerate("abc"):
        assert engine.observe(hit("r", seconds, group)) == []
    assert engine.evictions == 1
    assert engine.open_groups == 2
    assert engine.observe(hit("r", 5, "a")) == []  # "a" was evicted: it starts over
    assert len(engine.observe(hit("r", 6, "c"))) == 1


def test_idle_groups_expire_with_the_timespan():
    engine = CorrelationEngine([spec({"gte": 5})])
    engine.observe(hit("r", 0, "a"))
    engine.observe(hit("r", 10, "b"))
    assert engine.open_groups == 2
    engine.advance(65 * S)
    assert engine.open_groups == 1
    assert engine.expired == 1


def test_each_window_is_judged_at_the_first_tick_after_it_ends():
    """The clock moves on every event; windows of two correlations, opened at different
    times (one by a hit older than the clock), end exactly at their own ends."""
    short = spec({"lte": 1000}, timespan_ns=20 * S)
    long = spec({"lte": 1000}, info=info("long"))
    engine = CorrelationEngine([short, long])
    ended: dict[int, list[str]] = {}
    engine.observe(hit("r", 5, "a"))
    for second in range(6, 120):
        if second == 30:
            engine.observe(hit("r", 12, "late"))  # older than the clock
        for firing in engine.advance(second * S):
            ended.setdefault(second, []).append(f"{firing.spec.info.key}:{firing.group[1]}")
    assert ended == {26: ["c:a"], 33: ["c:late"], 66: ["long:a"], 73: ["long:late"]}


def test_tumbling_windows_keep_counts_but_few_hits():
    engine = CorrelationEngine([spec({"lte": 1000})], limits=CorrelationLimits(max_kept_hits=3))
    for seconds in range(10):
        engine.observe(hit("r", seconds))
    (firing,) = engine.flush()
    assert firing.count == 10
    assert firing.events == 10
    assert len(firing.hits) == 3


@pytest.mark.parametrize(
    ("mapping", "counts"),
    [
        ({"gt": 2}, {2: False, 3: True}),
        ({"gte": 2}, {1: False, 2: True}),
        ({"lt": 2}, {1: True, 2: False}),
        ({"lte": 2}, {2: True, 3: False}),
        ({"eq": 2}, {2: True, 3: False}),
        ({"neq": 2}, {2: False, 3: True}),
        ({"gt": 2, "lte": 4}, {2: False, 3: True, 4: True, 5: False}),
    ],
)
def test_count_conditions(mapping, counts):
    condition = CountCondition.from_mapping(mapping)
    assert {count: condition.holds(count) for count in counts} == counts


def test_count_condition_rejects_nonsense():
    for bad in ({}, {"gte": "x"}, {"about": 3}, {"gte": True}):
        with pytest.raises(ValueError, match="condition"):
            CountCondition.from_mapping(bad)


def test_unsupported_correlations_are_reported(sigma_report):
    report = sigma_report(
        correlation(
            "    type: value_sum\n    rules: [su_run]\n    group-by: [User]\n"
            "    timespan: 1m\n    condition: {gte: 3, field: ProcessId}\n"
        )
    )
    assert [p.reason for p in report.unsupported] == [
        "correlation type 'value_sum' is not supported"
    ]
    report = sigma_report(
        correlation(
            "    type: temporal\n    rules: [su_run, wget_run]\n    group-by: [User]\n"
            "    timespan: 1m\n    condition: {lt: 2}\n"
        )
    )
    assert "upper bound" in report.unsupported[0].reason


def test_correlation_over_unknown_rule_is_an_error(sigma_report):
    report = sigma_report(
        correlation(
            "    type: event_count\n    rules: [nope]\n    group-by: [User]\n"
            "    timespan: 1m\n    condition: {gte: 3}\n"
        )
    )
    (error,) = report.errors
    assert error.location == "inline.yml#7:correlation.rules"
    assert "nope" in error.message


def test_correlation_over_unsupported_rule_is_unsupported(sigma_report):
    text = """title: apache
name: apache_rule
logsource: {product: linux, service: apache}
detection:
    keywords: ['error']
    condition: keywords
---
title: c
correlation:
    type: event_count
    rules: [apache_rule]
    timespan: 1m
    condition: {gte: 3}
"""
    report = sigma_report(text)
    assert [p.reason.split(":")[0] for p in report.unsupported] == [
        "logsource",
        "correlation refers to rules that are not loaded",
    ]
