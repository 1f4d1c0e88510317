"""Exclusive partition ownership with leases in a JetStream key-value bucket.

Workers started with ``--claim`` share the partitions among themselves instead of each
running a fixed one. The bucket ``PROVARMOR_LEASES`` (file-backed, entries expire ``ttl``
after their last write) holds:

    members.<worker id>       a worker that is alive (written again every ttl/3)
    partitions.<p>            the worker that owns partition p (made with "create", which
                              fails while another holds it; renewed with compare-and-set on
                              its revision, so a lease that expired and was taken is lost,
                              never shared)

Each worker computes the same assignment from the live members (rendezvous hashing: a
partition goes to the member with the highest hash of partition and member), claims the
partitions it should own once they are free, and releases those it should no longer own
after the fetch in hand. A new worker therefore takes its share from the others within about
``ttl``; a dead worker's partitions are taken over when its leases expire.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
from collections.abc import Iterable

import nats.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.errors import (
    BucketNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    NotFoundError,
)
from nats.js.errors import Error as JetStreamError
from nats.js.kv import KeyValue

BUCKET = "PROVARMOR_LEASES"
MEMBERS = "members"
PARTITIONS = "partitions"


def worker_name() -> str:
    """This process's id in the bucket: host name and pid (key-safe characters only)."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]
    return f"{host}-{os.getpid()}"


def assignment(partitions: int, members: Iterable[str]) -> dict[int, str]:
    """Which member should own each partition (the same on every worker)."""
    found = sorted(set(members))
    if not found:
        return {}

    def weight(partition: int, member: str) -> bytes:
        return hashlib.sha256(f"{partition}:{member}".encode()).digest()

    return {p: max(found, key=lambda member: weight(p, member)) for p in range(partitions)}


async def open_leases(js: JetStreamContext, *, ttl_s: float) -> KeyValue:
    """The bucket, made with ``ttl_s`` when there is none (an existing one keeps its TTL)."""
    try:
        return await js.key_value(BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=BUCKET, ttl=ttl_s, history=1, storage=StorageType.FILE)
        )


class PartitionLeases:
    """One worker's membership and the leases it holds."""

    def __init__(self, kv: KeyValue, *, worker: str, partitions: int) -> None:
        self.kv = kv
        self.worker = worker
        self.partitions = partitions
        self.held: dict[int, int] = {}
        """Partition -> revision of this worker's lease entry."""
        self.lost = 0
        """Leases found taken when they were renewed (counted, logged by the caller)."""

    async def heartbeat(self) -> None:
        await self.kv.put(f"{MEMBERS}.{self.worker}", b"alive")

    async def members(self) -> list[str]:
        return [key.removeprefix(f"{MEMBERS}.") for key in await _keys(self.kv, MEMBERS)]

    async def wanted(self) -> set[int]:
        """The partitions this worker should own now."""
        members = await self.members()
        if self.worker not in members:
            members.append(self.worker)
        owners = assignment(self.partitions, members)
        return {p for p, owner in owners.items() if owner == self.worker}

    async def claim(self, partition: int) -> bool:
        """Take the partition's lease if nobody holds it."""
        try:
            revision = await self.kv.create(f"{PARTITIONS}.{partition}", self.worker.encode())
        except KeyWrongLastSequenceError:
            return False
        self.held[partition] = revision
        return True

    async def renew(self, partition: int) -> bool:
        """Write the lease again (on its revision); ``False`` when it was lost."""
        try:
            self.held[partition] = await self.kv.update(
                f"{PARTITIONS}.{partition}", self.worker.encode(), last=self.held[partition]
            )
        except KeyWrongLastSequenceError:
            self.held.pop(partition, None)
            self.lost += 1
            return False
        return True

    async def release(self, partition: int) -> None:
        revision = self.held.pop(partition, None)
        if revision is None:
            return
        # taken or expired meanwhile: it is not ours either way
        with contextlib.suppress(KeyWrongLastSequenceError, JetStreamError, nats.errors.Error):
            await self.kv.delete(f"{PARTITIONS}.{partition}", last=revision)

    async def leave(self) -> None:
        """Release every lease and the membership (a clean stop hands over at once)."""
        for partition in list(self.held):
            await self.release(partition)
        with contextlib.suppress(JetStreamError, nats.errors.Error):  # else it expires
            await self.kv.delete(f"{MEMBERS}.{self.worker}")


async def _keys(kv: KeyValue, prefix: str) -> list[str]:
    """The live keys under ``prefix.`` (the client's own filter matches substrings)."""
    try:
        keys = await kv.keys()
    except NoKeysError:
        return []
    return [key for key in keys if key.startswith(f"{prefix}.")]


async def owners(kv: KeyValue) -> dict[int, str]:
    """Who holds which partition now (for status and tests)."""
    found = {}
    for key in await _keys(kv, PARTITIONS):
        try:
            entry = await kv.get(key)
        except NotFoundError:  # released or expired meanwhile
            continue
        if entry.value:
            found[int(key.rsplit(".", 1)[1])] = entry.value.decode()
    return found
