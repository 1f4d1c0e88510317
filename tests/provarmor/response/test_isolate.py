"""``isolate``/``release`` on real nftables inside a network namespace: while isolated
only loopback and the manager stay reachable; release (by hand or at its time) removes the
isolation chains and everything is reachable again."""

import dataclasses

import pytest

from provarmor.response.audit import AuditTrail
from provarmor.response.isolate import ISOLATE, RELEASE, release_due
from provarmor.response.policy import Policy
from provarmor.response.records import ActionKind, ActionRequest, HostTarget, Outcome
from provarmor.response.responder import Responder

from .conftest import wait_for

pytestmark = pytest.mark.privileged


@pytest.fixture
def inside(context, namespaces):
    settings = dataclasses.replace(
        context.settings, network_namespace=namespaces.agent, manager_addresses=("10.231.0.3",)
    )
    return dataclasses.replace(context, settings=settings)


def chains(namespaces) -> str:
    return namespaces.run(namespaces.agent, "nft", "list", "table", "inet", "provarmor").stdout


def test_isolate_keeps_loopback_and_the_manager_only(inside, namespaces):
    target = HostTarget()
    result = ISOLATE.run(
        ActionRequest(id="i", kind=ActionKind.ISOLATE, target=target, requested_by="t"), inside
    )
    assert result.outcome is Outcome.DONE, result.message
    assert "isolate_input" in chains(namespaces) and "policy drop" in chains(namespaces)
    assert namespaces.reaches("10.231.0.3")
    assert namespaces.reaches("127.0.0.1")
    assert not namespaces.reaches("10.231.0.2")
    again = ISOLATE.run(
        ActionRequest(id="i2", kind=ActionKind.ISOLATE, target=target, requested_by="t"), inside
    )
    assert again.outcome is Outcome.DONE
    assert chains(namespaces).count("chain isolate_input") == 1
    back = RELEASE.run(
        ActionRequest(id="r", kind=ActionKind.RELEASE, target=target, requested_by="t"), inside
    )
    assert back.outcome is Outcome.DONE
    assert "isolate_input" not in chains(namespaces)
    assert namespaces.reaches("10.231.0.2")


def test_isolation_ends_at_its_release_time(inside, namespaces):
    responder = Responder(
        policy=Policy(), context=inside, audit=AuditTrail(inside.settings.audit_file)
    )
    request = ActionRequest(
        id="i",
        kind=ActionKind.ISOLATE,
        target=HostTarget(release_after_seconds=4),
        requested_by="t",
    )
    assert responder.run(request).outcome is Outcome.DONE
    assert responder.tick() is None, "released before its time"
    assert not namespaces.reaches("10.231.0.2")
    wait_for(lambda: release_due(inside), timeout=10, what="the release time")
    released = responder.tick()
    assert released is not None and released.outcome is Outcome.DONE
    assert released.request.requested_by == "schedule"
    assert "isolate_input" not in chains(namespaces)
    assert namespaces.reaches("10.231.0.2")
    assert not inside.settings.isolation_file.exists()
    assert responder.tick() is None


def test_the_version_1_isolation_state_fixture_reads(context):
    from pathlib import Path

    fixture = Path(__file__).parents[2] / "data" / "response" / "isolation-v1.json"
    context.settings.state_dir.mkdir(parents=True)
    context.settings.isolation_file.write_bytes(fixture.read_bytes())
    assert not release_due(context, now=1765000599.0)
    assert release_due(context, now=1765000600.0)
