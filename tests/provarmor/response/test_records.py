"""Requests and results round-trip through JSON with their typed target."""

import msgspec
import pytest

from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    ActionResult,
    FileTarget,
    HostTarget,
    Hunk,
    NetworkTarget,
    Outcome,
    PersistenceTarget,
    ProcessTarget,
    QuarantinedTarget,
    RevertedTarget,
    UserTarget,
    describe_target,
)

TARGETS = [
    (ProcessTarget(entity_id="e", pid=7, executable="/tmp/x"), "pid 7 (/tmp/x)"),
    (FileTarget(path="/tmp/x"), "/tmp/x"),
    (QuarantinedTarget(quarantine_id="ab"), "quarantined ab"),
    (PersistenceTarget(path="/root/.bashrc", written_ns=5), "/root/.bashrc"),
    (
        RevertedTarget(
            path="/root/.bashrc",
            hunks=(Hunk(line=3, replaced=0, lines=b"\xffhook\r\n"),),
            reverted_sha256="a",
            original_sha256="b",
        ),
        "/root/.bashrc (1 reverted hunk(s))",
    ),
    (NetworkTarget(ip="192.0.2.1", port=22), "192.0.2.1:22"),
    (NetworkTarget(ip="192.0.2.1"), "192.0.2.1"),
    (HostTarget(release_after_seconds=5), "this host"),
    (UserTarget(name="bob"), "user bob"),
]


@pytest.mark.parametrize(("target", "label"), TARGETS)
def test_targets_round_trip_with_their_type(target, label):
    request = ActionRequest(id="i", kind=ActionKind.KILL, target=target, requested_by="t")
    decoded = msgspec.json.decode(msgspec.json.encode(request), type=ActionRequest)
    assert decoded == request and type(decoded.target) is type(target)
    assert describe_target(target) == label


def test_a_result_keeps_its_undo_target():
    result = ActionResult(
        outcome=Outcome.DONE, message="m", undo_target=QuarantinedTarget(quarantine_id="q")
    )
    assert msgspec.json.decode(msgspec.json.encode(result), type=ActionResult) == result


def test_an_unknown_target_type_is_rejected():
    text = b'{"id":"i","kind":"kill","target":{"type":"planet"},"requested_by":"t"}'
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(text, type=ActionRequest)
