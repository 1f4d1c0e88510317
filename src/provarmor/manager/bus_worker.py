"""``provarmor worker``: analyse one partition of the fleet's event bus into the findings
store.

The worker binds the partition's durable pull consumer (:mod:`provarmor.bus.stream`) and
takes its batches up to ``fetch`` at a time, in stream order: each is decoded and checked
against the sending agent's enrolment (agent id and host); the fetch is analysed (each
host's batches in order) and stored in one transaction by the
:class:`~provarmor.manager.ingest.Ingestor` (the same code as an HTTP upload), and only then
are its batches acknowledged. A worker killed before the acks gets the batches again (after
``ack_wait``), and the findings store's per-agent sequence answers them as duplicates:
nothing is stored twice, nothing is lost. Later batches may come before those (the consumer
lets ``fetch`` batches be unacknowledged): a batch that follows a gap in its agent's sequence
has the batches in between taken from the stream first (:class:`StreamReplay`; counted in
``filled``). A host's batches all land in one partition, and one worker runs a partition, so
a host is analysed by one worker at a time and in order. With ``claim`` the
worker runs the partitions its leases give it instead of one fixed partition
(:mod:`provarmor.bus.leases`: a joining worker takes its share, a dead one's partitions are
taken over when its leases expire), one consumer each, their batches through one ingestor in
turn.

The stream keeps the batches after their ack, so a host's analysis is checkpointed only every
few batches or seconds (the ingestor's ``checkpoint_batches``/``checkpoint_seconds``; quiet
hosts every ``settle_every_s``): a host opened elsewhere restores its checkpoint and takes the
batches committed after it again from the stream (:class:`StreamReplay`, the ingestor's
replay source), so it goes on exactly where the killed worker stopped.

A message that can never be stored (unknown format, unknown agent, events of another host)
is terminated (JetStream stops delivering it), logged and counted in ``rejected``; a store
that fails is retried (the message is not acknowledged). A broker outage only pauses the
worker: the connection reconnects by itself.

Nothing is lost silently: a batch names the sequence its agent's batch before it ended at
(``after``); when the findings store holds less from the agent and the stream does not have
the batches in between either, they never reached the worker (the stream is full and dropped
its oldest batches, or they were deleted from it): the batch is stored all the same, and the
gap is logged and counted (``sequence_gaps``, ``events_lost``: the spool sequence numbers
missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from provarmor.bus.credentials import Credentials
from provarmor.bus.leases import PartitionLeases, open_leases, worker_name
from provarmor.bus.message import decode_message, host_token
from provarmor.bus.stream import PARTITION_PREFIX, STREAM, StreamLayout, connect, ensure_stream
from provarmor.manager.ingest import Ingestor, StoredBatch, Upload, UploadResult
from provarmor.manager.store import AgentRecord
from provarmor.model.errors import ProvArmorError, StorageError

log = logging.getLogger(__name__)

RETRY_DELAY_S = 2.0
REPLAY_TIMEOUT_S = 10.0
"""How long one read of the stream may take while a host catches up."""


class StreamReplay:
    """The ingestor's replay source: a host's batches as the stream still holds them, read
    one at a time (by subject, from a stream sequence) from the ingestor's thread over the
    worker's connection. A bus that does not answer raises :class:`StorageError` (the batch
    in hand is delivered again later)."""

    def __init__(self) -> None:
        self._bound: tuple[JetStreamContext, asyncio.AbstractEventLoop] | None = None

    def bind(self, js: JetStreamContext, loop: asyncio.AbstractEventLoop) -> None:
        self._bound = (js, loop)

    def __call__(self, host_id: str, position: int) -> Iterator[StoredBatch]:
        if self._bound is None:
            raise StorageError("the worker is not connected to the bus", location=host_id)
        js, loop = self._bound
        subject = f"{PARTITION_PREFIX}.*.{host_token(host_id)}"
        after = position
        while True:
            read = asyncio.run_coroutine_threadsafe(
                js.get_msg(STREAM, seq=after + 1, subject=subject, next=True), loop
            )
            try:
                raw = read.result(REPLAY_TIMEOUT_S)
            except NotFoundError:
                return
            except (nats.errors.Error, JetStreamError, OSError, TimeoutError) as exc:
                read.cancel()
                raise StorageError(
                    f"the stream did not answer: {exc!r}", location=f"{subject}#{after + 1}"
                ) from None
            assert raw.seq is not None and raw.data is not None  # a stored message has both
            after = raw.seq
            batch = decode_message(raw.headers or {}, raw.data, location=f"{subject}#{after}")
            yield StoredBatch(
                position=after,
                agent_id=batch.agent_id,
                sequence=batch.sequence,
                body=batch.body,
                after=batch.after,
            )


@dataclass(slots=True)
class WorkerCounters:
    batches: int = 0
    """Batches analysed and stored."""
    duplicates: int = 0
    """Batches the findings store already had (re-deliveries)."""
    events: int = 0
    rejected: int = 0
    """Messages terminated: they can never be stored."""
    retried: int = 0
    """Batches whose store failed and that are delivered again."""
    unsettled: int = 0
    """Acknowledgements the broker did not take (the batch comes again)."""
    reasons: dict[str, int] = field(default_factory=dict)
    partitions: list[int] = field(default_factory=list)
    """With ``claim``: the partitions this worker holds now."""
    claimed: int = 0
    released: int = 0
    leases_lost: int = 0
    """Leases found taken when renewed (this worker was too slow to renew within the TTL)."""
    sequence_gaps: int = 0
    """Batches stored after a gap in their agent's sequence (the batches in between are
    lost: see the module docstring)."""
    events_lost: int = 0
    """Spool sequence numbers (events) in those gaps."""
    filled: int = 0
    """Batches delivered out of order (after a kill or a broker restart, JetStream re-sends
    an unacknowledged batch only after ``ack_wait``, and the later ones come first): taken
    from the stream before the batch that followed them (counted in ``batches``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    url: str
    partition: int
    layout: StreamLayout = field(default_factory=StreamLayout)
    ack_wait_s: float = 30.0
    """How long JetStream waits for a batch's ack before delivering it again (elsewhere)."""
    credentials: Credentials | None = None
    """The worker's bus user (cluster mode); none: a bus without authentication."""
    ca_file: Path | None = None
    """CA of the bus's TLS certificate (a ``tls://`` URL)."""
    claim: bool = False
    """Share the partitions with the other claiming workers by leases (``partition`` unused)."""
    lease_ttl_s: float = 10.0
    """How long a lease lasts without renewal (fixed when the lease bucket is made)."""
    worker_name: str = ""
    """This worker's name among the claiming workers (default: host name and pid)."""
    settle_every_s: float = 0.0
    """Every so often, checkpoint the hosts whose graph writes waited this long (0: never;
    :meth:`~provarmor.manager.ingest.Ingestor.settle_idle`)."""
    fetch: int = 256
    """Batches taken from the bus at most at a time (and delivered unacknowledged at most):
    analysed together, their findings stored in one transaction, then acknowledged."""
    fetch_wait_s: float = 1.0
    """How long a fetch waits for a first batch when none is there (it returns at once with
    those that are)."""


class BusWorker:
    def __init__(
        self, ingestor: Ingestor, options: WorkerOptions, *, replay: StreamReplay | None = None
    ) -> None:
        """``replay``: the ingestor's replay source, bound to this worker's connection."""
        self.ingestor = ingestor
        self.options = options
        self._replay = replay
        self.counters = WorkerCounters()
        self._stopping = asyncio.Event()
        self._turn = asyncio.Lock()
        self._agents: dict[str, AgentRecord] = {}

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        options = self.options
        client = await connect(
            options.url,
            name=f"provarmor-worker-{options.worker_name or f'p{options.partition}'}",
            credentials=options.credentials,
            ca_file=options.ca_file,
        )
        settling: asyncio.Task[None] | None = None
        try:
            js = client.jetstream()
            if self._replay is not None:
                self._replay.bind(js, asyncio.get_running_loop())
            await ensure_stream(js, options.layout)
            if options.settle_every_s > 0:
                settling = asyncio.create_task(self._settle_quiet_hosts(options.settle_every_s))
            if options.claim:
                await self._run_claiming(js)
            else:
                await self._consume(js, options.partition, self._stopping)
        finally:
            if settling is not None:
                settling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await settling
            await client.close()

    async def _settle_quiet_hosts(self, every_s: float) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=every_s)
            await asyncio.to_thread(self.ingestor.settle_idle, every_s)

    async def _consume(self, js: JetStreamContext, partition: int, stop: asyncio.Event) -> None:
        """Take the partition's batches, up to ``fetch`` at a time, until ``stop`` (or the
        worker's stop)."""
        options = self.options
        config = options.layout.consumer(partition, in_flight=options.fetch)
        config.ack_wait = options.ack_wait_s
        await js.add_consumer(STREAM, config)
        assert config.durable_name is not None
        subscription = await js.pull_subscribe_bind(config.durable_name, stream=STREAM)
        try:
            while not stop.is_set() and not self._stopping.is_set():
                try:
                    messages = await subscription.fetch(options.fetch, timeout=options.fetch_wait_s)
                except nats.errors.TimeoutError:
                    continue
                except (nats.errors.Error, JetStreamError, OSError) as exc:
                    log.warning("bus: %s (retrying)", exc)  # e.g. the broker restarts
                    await asyncio.sleep(0.5)
                    continue
                async with self._turn:  # one fetch at a time through the one ingestor
                    await self.handle(messages)
        finally:
            with contextlib.suppress(nats.errors.Error, JetStreamError, OSError):
                await subscription.unsubscribe()

    async def _run_claiming(self, js: JetStreamContext) -> None:
        """Own the partitions the lease assignment gives this worker (:mod:`provarmor.bus.leases`):
        every ttl/3 the membership and held leases are written again, free partitions this
        worker should own are claimed, and those it should no longer own (or whose lease
        was lost) are handed back after the fetch in hand."""
        options = self.options
        kv = await open_leases(js, ttl_s=options.lease_ttl_s)
        leases = PartitionLeases(
            kv, worker=options.worker_name or worker_name(), partitions=options.layout.partitions
        )
        running: dict[int, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        try:
            while not self._stopping.is_set():
                try:
                    await self._rebalance(js, leases, running)
                except (nats.errors.Error, JetStreamError, OSError) as exc:
                    log.warning("partition leases: %s (retrying)", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=options.lease_ttl_s / 3)
        finally:
            for stop, _ in running.values():
                stop.set()
            await asyncio.gather(*(task for _, task in running.values()), return_exceptions=True)
            with contextlib.suppress(nats.errors.Error, JetStreamError, OSError):
                await leases.leave()
            self.counters.leases_lost = leases.lost

    async def _rebalance(
        self,
        js: JetStreamContext,
        leases: PartitionLeases,
        running: dict[int, tuple[asyncio.Event, asyncio.Task[None]]],
    ) -> None:
        await leases.heartbeat()
        wanted = await leases.wanted()
        for partition, (stop, task) in list(running.items()):
            if partition not in wanted:
                stop.set()
            if task.done():
                running.pop(partition)
                await leases.release(partition)
                self.counters.released += 1
                problem = task.exception()
                log.info(
                    "partition %d handed back%s", partition, f" ({problem})" if problem else ""
                )
            elif partition in leases.held and not await leases.renew(partition):
                stop.set()  # another worker holds it now: stop after the fetch in hand
                log.warning("partition %d: lease lost (taken after it expired)", partition)
        for partition in sorted(wanted - running.keys()):
            if await leases.claim(partition):
                stop = asyncio.Event()
                running[partition] = (stop, asyncio.create_task(self._consume(js, partition, stop)))
                self.counters.claimed += 1
                log.info("partition %d claimed", partition)
        self.counters.partitions = sorted(leases.held)

    async def handle(self, messages: Sequence[Msg]) -> None:
        """Store a fetch of batches (one transaction), then ack each; a batch that can
        never be stored is terminated, one whose store failed is delivered again."""
        taken = await self._decode(messages)
        if not taken:
            return
        uploads = [upload for _, _, upload in taken]
        work = asyncio.create_task(asyncio.to_thread(self.ingestor.ingest_many, uploads))
        while not work.done():  # a long fetch is not re-sent while it is analysed
            await asyncio.wait({work}, timeout=self.options.ack_wait_s / 3)
            if not work.done():
                for message, location, _ in taken:
                    await self._settle(message.in_progress(), location)
        try:
            results: list[UploadResult | ProvArmorError] = work.result()
        except StorageError as exc:  # the commit failed: every batch comes again
            results = [exc] * len(taken)
        answers: list[Awaitable[object]] = []
        for (message, location, upload), result in zip(taken, results, strict=True):
            if isinstance(result, StorageError):
                self._retry(location, result)
                answers.append(self._settle(message.nak(delay=RETRY_DELAY_S), location))
            elif isinstance(result, ProvArmorError):
                self._reject(location, result)
                answers.append(self._settle(message.term(), location))
            else:
                answers.append(self._settle(message.ack_sync(), location))
                self._count(result, location, upload.after)
        await asyncio.gather(*answers)

    async def _decode(self, messages: Sequence[Msg]) -> list[tuple[Msg, str, Upload]]:
        """The fetch's batches of enrolled agents, each with its message and location;
        the others are terminated (never storable) or delivered again (the store failed)."""
        taken: list[tuple[Msg, str, Upload]] = []
        for message in messages:
            location = f"{message.subject}#{message.metadata.sequence.stream}"
            try:
                batch = decode_message(message.headers, message.data, location=location)
                agent = self._agent(batch.agent_id)
                if agent is None or agent.host_id != batch.host_id:
                    raise ProvArmorError(
                        f"agent {batch.agent_id!r} is not enrolled for host {batch.host_id!r}",
                        location=location,
                    )
            except StorageError as exc:
                self._retry(location, exc)
                await self._settle(message.nak(delay=RETRY_DELAY_S), location)
                continue
            except ProvArmorError as exc:
                self._reject(location, exc)
                await self._settle(message.term(), location)
                continue
            upload = Upload(
                agent=agent,
                sequence=batch.sequence,
                body=batch.body,
                position=message.metadata.sequence.stream,
                after=batch.after,
            )
            taken.append((message, location, upload))
        return taken

    def _agent(self, agent_id: str) -> AgentRecord | None:
        """The enrolled agent (enrolment never changes an agent's host: kept once found)."""
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self.ingestor.store.agent(agent_id)
            if agent is not None:
                self._agents[agent_id] = agent
        return agent

    def _count(self, result: UploadResult, location: str, after: int | None) -> None:
        if result.duplicate:
            self.counters.duplicates += 1
            return
        self.counters.batches += 1 + result.filled
        self.counters.filled += result.filled
        self.counters.events += result.events
        if result.lost:
            assert after is not None  # a gap is seen by the batch's ``after`` only
            self.counters.sequence_gaps += 1
            self.counters.events_lost += result.lost
            log.error(
                "batch %s follows its agent's batch %d, but the store had only %d: "
                "%d events never reached this worker (lost)",
                location,
                after,
                after - result.lost,
                result.lost,
            )

    def _retry(self, location: str, exc: StorageError) -> None:
        self.counters.retried += 1
        log.error("batch %s not stored (delivered again): %s", location, exc)

    async def _settle(self, answer: Awaitable[object], location: str) -> None:
        """Send an ack, nak, term or progress note; when the broker is gone the batch is
        delivered again later and the store answers it as a duplicate (counted)."""
        try:
            await answer
        except (nats.errors.Error, JetStreamError, OSError) as exc:
            self.counters.unsettled += 1
            log.warning("batch %s: the broker did not take its acknowledgement: %s", location, exc)

    def _reject(self, location: str, exc: ProvArmorError) -> None:
        self.counters.rejected += 1
        reason = type(exc).__name__
        self.counters.reasons[reason] = self.counters.reasons.get(reason, 0) + 1
        log.error("batch %s rejected (never stored): %s", location, exc)
