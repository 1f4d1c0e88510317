"""Proposals from provenance: random-looking name parts become globs (never leaving a
pattern too broad), one exception per rule, the lineage the acting processes share, and
nothing from a process the graph does not know."""

import pytest

from provarmor.manager.exceptions import ExceptionScope, ExceptionState, too_broad
from provarmor.manager.proposals import Origin, generalise, propose
from provarmor.model.alert import Alert


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("/usr/bin/id", "/usr/bin/id"),
        ("/tmp/.portal-6ww3/irqbalance-d4", "/tmp/.portal-*/irqbalance-d4"),
        ("/tmp/tmp.XyZ123AB/venv/bin/python", "/tmp/tmp.*/venv/bin/python"),
        ("/tmp/tmp.aBcDeFgH/x.so", "/tmp/tmp.*/x.so"),
        ("/proc/4711/status", "/proc/*/status"),
        (
            "/root/.pyenv/versions/3.11.7/bin/python3.11",
            "/root/.pyenv/versions/3.11.7/bin/python3.11",
        ),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
        ("/var/lib/dpkg/info/redis-server.postinst", "/var/lib/dpkg/info/redis-server.postinst"),
        ("/run/user/1000/5f0c9a1e3b2d4c6f.sock", "/run/user/*/*.sock"),
        ("/etc/NetworkManager/system-connections", "/etc/NetworkManager/system-connections"),
        # generalising would leave "/tmp/*": the exact path is kept
        ("/tmp/ab12cd", "/tmp/ab12cd"),
        ("/home/u/a[1]*.txt", "/home/u/a[[]1][*].txt"),
    ],
)
def test_generalise(path, pattern):
    assert generalise(path) == pattern
    assert not too_broad(pattern)


ORIGIN = Origin(
    scope=ExceptionScope.HOST, host="h1", reason="apt", source="incident:i", author="a", now_ns=5
)
LINEAGES = {
    "p-useradd": ["/usr/sbin/useradd", "/usr/bin/dash", "/usr/bin/dpkg", "/usr/bin/apt-get"],
    "p-chage": ["/usr/bin/chage", "/usr/bin/dash", "/usr/bin/dpkg", "/usr/bin/apt-get"],
    "p-cat": ["/usr/bin/cat", "/usr/bin/bash", "/usr/sbin/sshd"],
    "p-exec-unknown": ["", "/usr/bin/bash"],
}


def _alert(number: int, rule: str, process: str, *paths: str) -> Alert:
    return Alert(
        id=f"{rule}@e{number}",
        rule_id=rule,
        rule_title=rule,
        host_id="h1",
        process_entity_ids=(process,),
        file_paths=paths,
    )


def _ids():
    numbers = iter(range(100))
    return lambda: f"exc-{next(numbers)}"


def test_one_exception_per_rule_with_the_shared_lineage():
    alerts = [
        _alert(1, "shadow", "p-useradd", "/etc/shadow"),
        _alert(2, "shadow", "p-chage", "/etc/shadow"),
        _alert(3, "shadow", "p-cat", "/etc/shadow"),
        _alert(4, "account", "p-useradd", "/etc/passwd", "/etc/group"),
        _alert(5, "account", "p-unknown", "/etc/passwd"),
        _alert(6, "account", "p-exec-unknown", "/etc/passwd"),
    ]
    proposed = propose(
        alerts, lineage_of=lambda e: LINEAGES.get(e, []), origin=ORIGIN, new_id=_ids()
    )
    assert [p.conditions.rules for p in proposed] == [("shadow",), ("account",)]
    shadow, account = proposed
    assert shadow.conditions.executables == ("/usr/sbin/useradd", "/usr/bin/chage", "/usr/bin/cat")
    # the three lineages share nothing at the nearest ancestor: no lineage condition
    assert shadow.conditions.lineage == ()
    assert shadow.conditions.paths == ("/etc/shadow",)
    assert account.conditions.executables == ("/usr/sbin/useradd",)
    assert account.conditions.lineage == ("/usr/bin/dash", "/usr/bin/dpkg", "/usr/bin/apt-get")
    assert account.conditions.paths == ("/etc/passwd", "/etc/group")
    assert all(p.state is ExceptionState.PROPOSED and p.host == "h1" for p in proposed)
    assert [p.id for p in proposed] == ["exc-0", "exc-1"]
    assert {(p.created_ns, p.created_by, p.source) for p in proposed} == {(5, "a", "incident:i")}


def test_package_lineage_shared_by_two_programs():
    alerts = [
        _alert(1, "shadow", "p-useradd", "/etc/shadow"),
        _alert(2, "shadow", "p-chage", "/etc/shadow"),
    ]
    (proposed,) = propose(
        alerts, lineage_of=lambda e: LINEAGES.get(e, []), origin=ORIGIN, new_id=_ids()
    )
    assert proposed.conditions.lineage == ("/usr/bin/dash", "/usr/bin/dpkg", "/usr/bin/apt-get")
    assert proposed.conditions.executables == ("/usr/sbin/useradd", "/usr/bin/chage")


def test_fleet_scope_has_no_host_and_unknown_processes_give_nothing():
    fleet = Origin(
        scope=ExceptionScope.FLEET, host="h1", reason="r", source="alert:h1/x", author="a", now_ns=1
    )
    (proposed,) = propose(
        [_alert(1, "shadow", "p-cat", "/etc/shadow")],
        lineage_of=lambda e: LINEAGES.get(e, []),
        origin=fleet,
        new_id=_ids(),
    )
    assert (proposed.scope, proposed.host) == (ExceptionScope.FLEET, "")
    unknown = [_alert(1, "x", "p-unknown"), _alert(2, "x", "p-exec-unknown"), _alert(3, "x", "")]
    assert (
        propose(unknown, lineage_of=lambda e: LINEAGES.get(e, []), origin=fleet, new_id=_ids())
        == []
    )
