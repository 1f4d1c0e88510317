"""Exception records: what counts as too broad, the scope checks (each naming its field),
the suppression an exception becomes, and its signature."""

import dataclasses

import pytest

from provarmor.detection.suppress import Suppression
from provarmor.manager.exceptions import (
    Conditions,
    ExceptionRecord,
    ExceptionScope,
    ExceptionState,
    ScopeError,
    check_scope,
    too_broad,
)

RULES = {"r1", "r2"}


def _record(**conditions) -> ExceptionRecord:
    values = {"rules": ("r1",), "executables": ("/usr/sbin/useradd",)} | conditions
    return ExceptionRecord(
        id="exc-1",
        state=ExceptionState.PROPOSED,
        scope=ExceptionScope.HOST,
        host="h1",
        conditions=Conditions(**values),
        reason="apt install redis-server",
        source="incident:inc-1",
        created_ns=1,
        created_by="analyst",
        updated_ns=1,
    )


@pytest.mark.parametrize(
    ("pattern", "broad"),
    [
        ("*", True),
        ("/*", True),
        ("/usr/bin/*", True),
        ("/etc/*", True),
        ("/tmp/*/x*", True),
        ("*sh", True),
        ("/usr/bin/id", False),
        ("/tmp/.portal-*/irqbalance-d4", False),
        ("/usr/bin/python3*", False),
        ("10.0.0.1:443", False),
        ("*.example.org", False),
    ],
)
def test_too_broad_patterns(pattern, broad):
    assert bool(too_broad(pattern)) is broad


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rules": ()}, "rules"),
        ({"rules": ("*",)}, "rules[0]"),
        ({"rules": ("r1", "nope")}, "rules[1]"),
        ({"executables": ()}, "executables"),
        ({"executables": ("/usr/sbin/useradd", "/usr/sbin/*")}, "executables[1]"),
        ({"lineage": ("/usr/bin/dpkg", " ")}, "lineage[1]"),
        ({"paths": ("/etc/*",)}, "paths[0]"),
        ({"endpoints": ("*:*",)}, "endpoints[0]"),
        ({"users": ("*",)}, "users"),
        ({"paths": tuple(f"/etc/file{i}" for i in range(51))}, "paths"),
    ],
)
def test_check_scope_names_the_offending_field(change, field):
    with pytest.raises(ScopeError) as raised:
        check_scope(_record(**change), known_rules=RULES)
    assert raised.value.field == field


def test_scope_and_host_must_agree():
    record = _record()
    check_scope(record, known_rules=RULES)
    with pytest.raises(ScopeError, match="names its host"):
        check_scope(dataclasses.replace(record, host=""), known_rules=RULES)
    with pytest.raises(ScopeError, match="names no host"):
        check_scope(dataclasses.replace(record, scope=ExceptionScope.FLEET), known_rules=RULES)
    check_scope(dataclasses.replace(record, scope=ExceptionScope.FLEET, host=""), known_rules=RULES)


def test_an_exception_becomes_a_suppression_named_by_its_id():
    record = _record(lineage=("/usr/bin/dpkg",), paths=("/etc/shadow",), users=("root",))
    assert record.to_suppression() == Suppression(
        name="exc-1",
        rules=("r1",),
        hosts=("h1",),
        executables=("/usr/sbin/useradd",),
        lineage=("/usr/bin/dpkg",),
        paths=("/etc/shadow",),
        users=("root",),
        reason="apt install redis-server",
    )
    fleet = dataclasses.replace(record, scope=ExceptionScope.FLEET, host="")
    assert fleet.to_suppression().hosts == ()


def test_signature_is_scope_and_conditions_only():
    record = _record(paths=("/etc/shadow",))
    same = dataclasses.replace(record, id="exc-2", reason="other", state=ExceptionState.ACTIVE)
    assert same.signature == record.signature
    assert dataclasses.replace(record, host="h2").signature != record.signature
    other = dataclasses.replace(record, conditions=Conditions(rules=("r2",)))
    assert other.signature != record.signature
    assert Conditions.from_json('{"rules": ["r1"], "paths": ["/x"]}') == Conditions(
        rules=("r1",), paths=("/x",)
    )
