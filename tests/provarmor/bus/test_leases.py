"""Partition leases in a real JetStream key-value bucket: one owner per partition, renewal
by revision, hand-over on release, take-over after expiry; the assignment is the same on
every worker and moves few partitions when a worker joins."""

import asyncio
import time

from provarmor.bus.leases import PartitionLeases, assignment, open_leases, owners
from provarmor.bus.stream import connect


def test_assignment_is_deterministic_balanced_and_stable():
    four = assignment(64, ["w1", "w2", "w3", "w4"])
    assert four == assignment(64, ["w4", "w3", "w2", "w1"])
    counts = {member: list(four.values()).count(member) for member in ("w1", "w2", "w3", "w4")}
    assert all(8 <= count <= 24 for count in counts.values()), counts
    five = assignment(64, ["w1", "w2", "w3", "w4", "w5"])
    moved = [p for p in range(64) if four[p] != five[p]]
    assert all(five[p] == "w5" for p in moved)  # only the newcomer's share moves
    assert assignment(4, []) == {}


async def _scenario(url: str) -> dict[str, object]:
    client = await connect(url, name="test")
    seen: dict[str, object] = {}
    try:
        kv = await open_leases(client.jetstream(), ttl_s=1.5)
        one = PartitionLeases(kv, worker="w1", partitions=2)
        two = PartitionLeases(kv, worker="w2", partitions=2)
        await one.heartbeat()
        seen["alone"] = await one.wanted()
        assert await one.claim(0) and await one.claim(1)
        seen["taken"] = await two.claim(0)
        await two.heartbeat()
        seen["shared"] = (await one.wanted(), await two.wanted())
        assert await one.renew(0)
        await one.release(1)
        seen["handed over"] = await two.claim(1)
        seen["owners"] = await owners(kv)
        # w1 stops renewing partition 0: after the TTL it expires and w2 takes it
        end = time.monotonic() + 10
        while not await two.claim(0):
            assert time.monotonic() < end, "lease did not expire"
            await two.renew(1)
            await asyncio.sleep(0.2)
        seen["late renew"] = await one.renew(0)
        seen["lost"] = one.lost
        seen["after"] = await owners(kv)
        await two.leave()
        seen["left"] = (await owners(kv), await two.members())
    finally:
        await client.close()
    return seen


def test_leases_are_exclusive_renewed_handed_over_and_taken_after_expiry(nats_server):
    seen = asyncio.run(_scenario(nats_server.url))
    assert seen["alone"] == {0, 1}
    assert seen["taken"] is False
    one_wants, two_wants = seen["shared"]
    assert one_wants | two_wants == {0, 1} and not one_wants & two_wants
    assert seen["handed over"] is True
    assert seen["owners"] == {0: "w1", 1: "w2"}
    assert seen["late renew"] is False  # w1's lease was taken: it must stop, not share
    assert seen["lost"] == 1
    assert seen["after"] == {0: "w2", 1: "w2"}
    assert seen["left"] == ({}, [])
