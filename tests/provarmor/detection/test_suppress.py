"""Suppressions (per rule, by host, lineage, executable, path, user) and deduplication, on
real captures of tests/data/rules and on factory events for the edge cases."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from functools import cache
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.detection.engine import detect
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.suppress import (
    Deduplicator,
    FilterStats,
    LineageTable,
    SuppressingDetector,
    Suppression,
    dedup_key,
    dump_suppressions,
    parse_suppressions,
)
from provarmor.model.actions import Action
from provarmor.model.alert import Alert
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event, ProcessRef, User
from provarmor.testing.factories import make_event

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "rules"
PACK = Path(__file__).resolve().parents[3] / "src" / "provarmor" / "data" / "rules"
SHADOW_RULE = "45e84dfd-cbd6-47e0-b578-543c3ae1da13"
SECOND = 1_000_000_000


@cache
def capture(name: str) -> tuple[Event, ...]:
    manifest = json.loads((CAPTURES / "manifest.json").read_text())
    raw = gzip.decompress((CAPTURES / manifest["cases"][name]["file"]).read_bytes())
    decoder = msgspec.json.Decoder(Event)
    return tuple(decoder.decode(line) for line in raw.splitlines() if line)


@cache
def pack() -> SigmaDetector:
    detector, report = SigmaDetector.from_paths([PACK / "credential_access"])
    assert not report.errors and not report.unsupported
    return detector


def shadow_alerts(*suppressions: Suppression) -> tuple[list[Alert], SuppressingDetector]:
    detector, _ = SigmaDetector.from_paths([PACK / "credential_access"])
    wrapped = SuppressingDetector(detector, suppressions=suppressions)
    alerts = [a for a in detect([wrapped], capture("shadow_read")) if a.rule_id == SHADOW_RULE]
    return alerts, wrapped


def readers(alerts: list[Alert], lineage: LineageTable) -> list[str]:
    found = [lineage.facts(alert.process_entity_ids[0]) for alert in alerts]
    return [facts.executable if facts else "?" for facts in found]


# -- suppressions on a real capture ----------------------------------------------------------


def test_without_suppressions_both_shadow_reads_alert():
    alerts, wrapped = shadow_alerts()
    assert readers(alerts, wrapped.lineage) == ["/usr/bin/cat", "/usr/bin/python3"]
    assert [alert.file_paths for alert in alerts] == [("/etc/shadow",), ("/etc/gshadow",)]
    assert wrapped.stats.suppressed == {}


@pytest.mark.parametrize(
    ("condition", "left"),
    [
        ({"executables": ("/usr/bin/cat",)}, ["/usr/bin/python3"]),
        ({"executables": ("*/python3*",)}, ["/usr/bin/cat"]),
        ({"ancestors": ("/usr/bin/sh",)}, []),
        ({"ancestors": ("/usr/bin/bash",)}, ["/usr/bin/cat", "/usr/bin/python3"]),
        ({"paths": ("/etc/gshadow",)}, ["/usr/bin/cat"]),
        ({"paths": ("/etc/*shadow",)}, []),
        ({"users": ("root",)}, []),
        ({"users": ("0",)}, []),
        ({"users": ("1000",)}, ["/usr/bin/cat", "/usr/bin/python3"]),
        ({"hosts": ("vm",)}, []),
        ({"hosts": ("db-*",)}, ["/usr/bin/cat", "/usr/bin/python3"]),
        (
            {"executables": ("/usr/bin/cat",), "paths": ("/etc/gshadow",)},
            ["/usr/bin/cat", "/usr/bin/python3"],
        ),
        ({"executables": ("/usr/bin/cat", "/usr/bin/python3"), "ancestors": ("*/sh",)}, []),
        # lineage: every pattern, in order going up, gaps allowed
        ({"lineage": ("/usr/bin/sh", "*/python3.11")}, []),
        ({"lineage": ("*/python3.11",)}, []),
        ({"lineage": ("*/python3.11", "/usr/bin/sh")}, ["/usr/bin/cat", "/usr/bin/python3"]),
        ({"lineage": ("/usr/bin/sh", "/usr/bin/sh")}, ["/usr/bin/cat", "/usr/bin/python3"]),
        ({"executables": ("/usr/bin/cat",), "lineage": ("/usr/bin/sh",)}, ["/usr/bin/python3"]),
        ({"endpoints": ("10.*",)}, ["/usr/bin/cat", "/usr/bin/python3"]),
    ],
)
def test_suppression_conditions_on_a_real_capture(condition, left):
    rule = Suppression(name="exception", rules=(SHADOW_RULE,), **condition)
    alerts, wrapped = shadow_alerts(rule)
    assert readers(alerts, wrapped.lineage) == left
    assert wrapped.stats.suppressed["exception"] == 2 - len(left)
    assert wrapped.stats.suppressed_by_rule[SHADOW_RULE] == 2 - len(left)


def test_suppression_names_rules_by_id_title_or_wildcard():
    title = "Password hash file read by an unexpected program"
    for rules in ((SHADOW_RULE,), (title,), ("*",)):
        alerts, _ = shadow_alerts(Suppression(name="s", rules=rules))
        assert alerts == [], rules
    alerts, _ = shadow_alerts(Suppression(name="s", rules=("another-rule",)))
    assert len(alerts) == 2


def test_first_matching_suppression_is_the_one_counted():
    first = Suppression(name="cat", rules=("*",), executables=("/usr/bin/cat",))
    second = Suppression(name="everything", rules=("*",))
    _, wrapped = shadow_alerts(first, second)
    assert wrapped.stats.suppressed == {"cat": 1, "everything": 1}


def test_unknown_process_is_never_suppressed_by_process_conditions():
    lineage = LineageTable()
    alert = Alert(id="a", rule_id="r", rule_title="t", process_entity_ids=("never-seen",))
    rule = Suppression(name="s", rules=("*",), executables=("*",))
    wrapped = SuppressingDetector(_Fixed([alert]), suppressions=[rule])
    assert wrapped.on_event(make_event(Action.OPEN, pid=1, path="/x")) == [alert]
    assert lineage.facts("never-seen") is None


# -- deduplication on a real capture ----------------------------------------------------------

GIT_CONFIG_RULE = """
title: git config opened
id: 5b1d9c4e-2f53-4a8e-9a4e-0c2f1e6f7a10
logsource: {product: linux, category: file_access}
detection:
    selection:
        TargetFilename|endswith: '/hello-copy/.git/config'
    condition: selection
level: low
"""


def _git_config_opens() -> Counter[str]:
    """Per git process of the benign capture, how many times it opened that file."""
    return Counter(
        event.process.entity_id
        for event in capture("benign")
        if event.event.action is Action.OPEN
        and event.file is not None
        and event.file.path.endswith("/hello-copy/.git/config")
    )


@pytest.mark.parametrize("window", [0, 60 * SECOND])
def test_repeated_hits_on_one_process_and_file_become_one_alert(sigma, window):
    opens = _git_config_opens()
    assert max(opens.values()) > 20
    wrapped = SuppressingDetector(sigma(GIT_CONFIG_RULE), window_ns=window)
    alerts = list(detect([wrapped], capture("benign")))
    if not window:
        assert Counter(alert.process_entity_ids[0] for alert in alerts) == opens
        assert wrapped.stats.duplicates == {}
        return
    assert {alert.process_entity_ids[0]: alert.count for alert in alerts} == opens
    assert len({dedup_key(alert) for alert in alerts}) == len(alerts) == len(opens)
    rule_id = alerts[0].rule_id
    assert wrapped.stats.duplicates == {rule_id: opens.total() - len(opens)}
    biggest = max(alerts, key=lambda alert: alert.count)
    assert len(biggest.event_ids) == 20
    assert biggest.last_timestamp > biggest.first_timestamp
    assert biggest.id.startswith(rule_id + "@")


# -- deduplication edge cases -----------------------------------------------------------------


def _alert(ts: int, *, pid: int = 1, path: str = "/etc/shadow", count: int = 1) -> Alert:
    return Alert(
        id=f"r@{ts}-{pid}",
        rule_id="r",
        rule_title="t",
        host_id="h",
        event_ids=(f"e{ts}",),
        process_entity_ids=(f"p{pid}",),
        file_paths=(path,),
        first_timestamp=ts,
        last_timestamp=ts,
        count=count,
    )


def test_window_closes_by_stream_time_and_restarts():
    dedup = Deduplicator(window_ns=10, stats=FilterStats())
    assert dedup.add(_alert(0)) == []
    assert dedup.add(_alert(5, count=3)) == []
    assert dedup.advance(10) == []
    (closed,) = dedup.advance(11)
    assert (closed.count, closed.first_timestamp, closed.last_timestamp) == (4, 0, 5)
    assert closed.event_ids == ("e0", "e5")
    assert dedup.pending == 0
    assert dedup.add(_alert(20)) == []
    (late,) = dedup.add(_alert(31))
    assert (late.count, late.first_timestamp) == (1, 20)
    (last,) = dedup.flush()
    assert last.first_timestamp == 31


def test_other_processes_and_objects_are_kept_apart():
    dedup = Deduplicator(window_ns=100, stats=FilterStats())
    for alert in (_alert(1), _alert(2, pid=2), _alert(3, path="/etc/gshadow"), _alert(4)):
        dedup.add(alert)
    assert sorted((a.process_entity_ids[0], a.file_paths[0], a.count) for a in dedup.flush()) == [
        ("p1", "/etc/gshadow", 1),
        ("p1", "/etc/shadow", 2),
        ("p2", "/etc/shadow", 1),
    ]


def test_negative_window_is_a_config_error():
    with pytest.raises(ConfigError, match="negative"):
        Deduplicator(window_ns=-1, stats=FilterStats())


class _Fixed:
    """A detector that raises the given alerts on its first event, and others at flush."""

    name = "fixed"

    def __init__(self, alerts: list[Alert], at_flush: list[Alert] | None = None) -> None:
        self._alerts = alerts
        self._at_flush = at_flush or []

    def on_event(self, event: Event) -> list[Alert]:
        alerts, self._alerts = self._alerts, []
        return alerts

    def flush(self) -> list[Alert]:
        return self._at_flush


def test_detector_releases_windows_as_events_advance_and_at_flush():
    wrapped = SuppressingDetector(
        _Fixed([_alert(1), _alert(2)], at_flush=[_alert(50, pid=9)]), window_ns=10
    )
    assert wrapped.on_event(make_event(Action.OPEN, pid=1, path="/x", ts=2)) == []
    (merged,) = wrapped.on_event(make_event(Action.OPEN, pid=1, path="/x", ts=20))
    assert merged.count == 2
    (from_flush,) = wrapped.flush()
    assert from_flush.process_entity_ids == ("p9",)
    assert wrapped.stats.passed == 2 and wrapped.name == "fixed"


# -- lineage ----------------------------------------------------------------------------------


def _exec(pid: int, exe: str, *, parent: int | None, uid: str = "0") -> Event:
    event = make_event(Action.EXEC, pid=pid, exe=exe)
    ref = ProcessRef(entity_id=f"test-host-p{parent}", pid=parent) if parent else None
    process = msgspec.structs.replace(event.process, parent=ref, user=User(id=uid))
    return msgspec.structs.replace(event, process=process)


def test_lineage_walks_up_and_stops_at_cycles_and_capacity():
    table = LineageTable(capacity=3)
    table.observe(_exec(1, "/usr/bin/a", parent=None))
    table.observe(_exec(2, "/usr/bin/b", parent=1))
    table.observe(_exec(3, "/usr/bin/c", parent=2, uid="1000"))
    assert table.ancestors("test-host-p3") == ["/usr/bin/b", "/usr/bin/a"]
    facts = table.facts("test-host-p3")
    assert facts is not None and (facts.user_id, facts.user_name) == ("1000", "")
    table.observe(_exec(1, "/usr/bin/a", parent=3))  # a cycle (recycled identities)
    assert table.ancestors("test-host-p3") == ["/usr/bin/b", "/usr/bin/a"]
    assert table.ancestors("test-host-p1") == ["/usr/bin/c", "/usr/bin/b"]
    table.observe(_exec(4, "/usr/bin/d", parent=None))
    assert table.evicted == 1 and table.facts("test-host-p1") is None


def test_later_exec_updates_the_executable():
    table = LineageTable()
    table.observe(make_event(Action.FORK, pid=5, exe="/usr/bin/bash"))
    table.observe(make_event(Action.OPEN, pid=5, exe="/usr/bin/other", path="/x"))
    facts = table.facts("test-host-p5")
    assert facts is not None and facts.executable == "/usr/bin/bash"
    table.observe(make_event(Action.EXEC, pid=5, exe="/usr/bin/curl"))
    assert facts.executable == "/usr/bin/curl"


def test_a_process_first_named_as_a_parent_learns_its_own_parent_later():
    table = LineageTable()
    table.observe(_exec(3, "/usr/bin/curl", parent=2))  # 2 is only a name so far
    table.observe(_exec(1, "/usr/sbin/sshd", parent=None))
    opened = make_event(Action.OPEN, pid=2, exe="/usr/bin/bash", path="/x")
    parent = ProcessRef(entity_id="test-host-p1", pid=1)
    table.observe(
        msgspec.structs.replace(
            opened, process=msgspec.structs.replace(opened.process, parent=parent)
        )
    )
    assert table.ancestors("test-host-p3") == ["/usr/bin/bash", "/usr/sbin/sshd"]


def test_the_creator_stays_the_parent_after_a_re_parenting():
    table = LineageTable()
    table.observe(_exec(1, "/sbin/init", parent=None))
    table.observe(_exec(2, "/usr/bin/sh", parent=None))
    table.observe(_exec(3, "/usr/bin/nohup", parent=2))
    # the shell exited; the daemonised program's exec names init as its parent
    table.observe(_exec(3, "/tmp/.x-6ww3/dropper", parent=1))
    assert table.ancestors("test-host-p3") == ["/usr/bin/sh"]
    assert table.facts("test-host-p3").executable == "/tmp/.x-6ww3/dropper"


class _OnOpen:
    """A detector that raises ``alert`` on every open."""

    name = "on-open"

    def __init__(self, alert: Alert) -> None:
        self.alert = alert

    def on_event(self, event: Event) -> list[Alert]:
        return [self.alert] if event.event.action is Action.OPEN else []

    def flush(self) -> list[Alert]:
        return []


def test_endpoint_condition_and_suppressions_swapped_while_running():
    alert = Alert(
        id="a",
        rule_id="r",
        rule_title="t",
        process_entity_ids=("test-host-p1",),
        remote_endpoints=("10.0.0.5:443",),
    )
    wrapped = SuppressingDetector(_Fixed([alert]))
    assert wrapped.on_event(_exec(1, "/usr/bin/curl", parent=None)) == [alert]
    wrong_port = Suppression(name="web", rules=("r",), endpoints=("10.0.0.*:80",))
    wrapped = SuppressingDetector(_Fixed([alert]), suppressions=[wrong_port])
    assert wrapped.on_event(_exec(1, "/usr/bin/curl", parent=None)) == [alert]
    wrapped = SuppressingDetector(_OnOpen(alert))
    assert wrapped.on_event(_exec(1, "/usr/bin/curl", parent=None)) == []
    assert wrapped.on_event(make_event(Action.OPEN, pid=9, path="/y")) == [alert]
    # swapped in later, an exception judges a process the filter learnt before it
    https = Suppression(
        name="https", rules=("r",), executables=("*/curl",), endpoints=("10.0.0.*:443",)
    )
    wrapped.replace_suppressions([https])
    assert wrapped.suppressions == (https,)
    assert wrapped.on_event(make_event(Action.OPEN, pid=9, path="/y")) == []
    assert wrapped.stats.suppressed == {"https": 1}


# -- the YAML form ----------------------------------------------------------------------------


def test_dump_reads_back_as_the_same_suppressions():
    suppressions = (
        Suppression(
            name="exc-1",
            rules=("r1", "A title: with colon"),
            hosts=("h1",),
            executables=("/tmp/.portal-*/irqbalance-d4",),
            ancestors=("/usr/bin/borg",),
            lineage=("/bin/sh", "/usr/bin/python3*"),
            paths=("/home/u/a[[]1].txt", "/etc/shadow"),
            endpoints=("[::1]:443",),
            users=("0", "root"),
            reason="it's the 'nightly' job\nsecond line",
        ),
        Suppression(name="exc-2", rules=("*",), executables=("/usr/bin/id",)),
    )
    text = dump_suppressions(suppressions, comment="exported\ntwo lines")
    assert text.startswith("# exported\n# two lines\n")
    assert parse_suppressions(text, source="export") == suppressions
    assert parse_suppressions(dump_suppressions(()), source="empty") == ()


def test_parse_suppressions():
    text = """
suppressions:
  - name: nightly backup reads shadow
    rule: 45e84dfd-cbd6-47e0-b578-543c3ae1da13
    ancestor: /usr/bin/borg
    path: [/etc/shadow, /etc/gshadow]
    reason: borg backs up /etc
  - name: build hosts compile in tmp
    rules: ["Program compiled into a temporary directory"]
    host: build-*
    user: [ci, 1001]
"""
    first, second = parse_suppressions(text, source="s.yml")
    assert first == Suppression(
        name="nightly backup reads shadow",
        rules=(SHADOW_RULE,),
        ancestors=("/usr/bin/borg",),
        paths=("/etc/shadow", "/etc/gshadow"),
        reason="borg backs up /etc",
    )
    assert (second.hosts, second.users) == (("build-*",), ("ci", "1001"))
    assert parse_suppressions("", source="s.yml") == ()
    assert parse_suppressions("suppressions: []", source="s.yml") == ()


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        ("- {rules: ['*']}", "s.yml:suppressions[0].name", "needs a name"),
        ("- {name: a}", "s.yml:suppressions[0]", "needs its rules"),
        ("- {name: a, rule: x, rules: [y]}", "s.yml:suppressions[0]", "not both"),
        ("- {name: a, rule: x, process: y}", "s.yml:suppressions[0]", "unknown keys"),
        ("- {name: a, rule: x, path: {p: 1}}", "s.yml:suppressions[0].path", "list of strings"),
        ("- {name: a, rule: x, user: ''}", "s.yml:suppressions[0].user", "empty"),
        ("- {name: a, rule: x}\n- {name: a, rule: y}", "s.yml", "unique"),
        ("- just text", "s.yml:suppressions[0]", "mapping"),
        ("other: 1", "s.yml", "unknown keys"),
        ("suppressions: 3", "s.yml", "list"),
        ("- [unclosed", "s.yml:1", "bad YAML"),
    ],
)
def test_bad_suppressions_name_the_entry_and_field(text, location, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_suppressions(text, source="s.yml")
    assert caught.value.location == location


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_garbage_text_gives_suppressions_or_config_error_only(text):
    try:
        parsed = parse_suppressions(text, source="fuzz")
    except ConfigError:
        return
    assert all(isinstance(item, Suppression) and item.rules for item in parsed)


YAMLISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "rule",
                    "rules",
                    "host",
                    "executable",
                    "ancestor",
                    "path",
                    "user",
                    "reason",
                    "x",
                ]
            ),
            YAMLISH,
            max_size=5,
        ),
        max_size=3,
    )
)
def test_arbitrary_structures_give_suppressions_or_config_error_only(entries):
    try:
        parsed = parse_suppressions(json.dumps(entries), source="fuzz")
    except ConfigError:
        return
    assert len(parsed) == len(entries)
