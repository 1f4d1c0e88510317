"""Bounded, drop-counting hand-off between threads, and the GAP event that reports a loss.

A sensor reader thread must never block on a slow pipeline (the kernel would drop events
for it, uncounted), so :meth:`BoundedQueue.put_nowait` drops instead of waiting and counts
the drop by reason. The queue also remembers *where* in the stream each loss happened, so
:func:`events_with_gap` can put one canonical ``gap`` event (see :class:`Action`) at that
point of the batch the consumer reads next: a silent drop is a bug in an EDR.

This module must not know about sensors or storage; it holds items of any type.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from provarmor.model.actions import Action
from provarmor.model.event import Event, EventInfo, Host, Process

T = TypeVar("T")

FULL = "full"
"""Drop reason: the queue held ``capacity`` items."""
CLOSED = "closed"
"""Drop reason: put after :meth:`BoundedQueue.close`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCounters:
    """A snapshot of a queue's counters (monotonic since creation, except ``size``)."""

    put: int
    """Items accepted."""
    dropped: dict[str, int]
    """Items lost, by reason (``full``, ``closed``, or one given to :meth:`~BoundedQueue.drop`)."""
    high_water: int
    """The most items the queue ever held at once."""
    size: int
    """Items waiting now."""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueBatch(Generic[T]):
    """What one :meth:`BoundedQueue.get_batch` returns: items in order, and the loss among them.

    ``lost`` items were dropped since the previous batch, at points up to the end of this one;
    the first of those losses happened just before ``items[lost_at]`` (``lost_at`` equals
    ``len(items)`` when it happened after the last item; 0 when nothing was lost).
    """

    items: list[T]
    lost: int = 0
    lost_at: int = 0


class BoundedQueue(Generic[T]):
    """A thread-safe FIFO holding at most ``capacity`` items; producers never block.

    Args:
        capacity: the most items held; a put beyond it is dropped and counted as ``full``.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"queue capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        self._items: deque[T] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False
        self._put = 0
        self._taken = 0
        self._high_water = 0
        self._dropped: dict[str, int] = {}
        self._losses: deque[list[int]] = deque()
        """``[put count when the loss happened, items lost there]``, oldest first."""

    @property
    def capacity(self) -> int:
        return self._capacity

    def put_nowait(self, item: T) -> bool:
        """Enqueue ``item`` unless the queue is full or closed; False when it was dropped."""
        with self._ready:
            if self._closed:
                self._record_drop(CLOSED, 1)
                return False
            if len(self._items) >= self._capacity:
                self._record_drop(FULL, 1)
                return False
            self._items.append(item)
            self._put += 1
            self._high_water = max(self._high_water, len(self._items))
            self._ready.notify()
            return True

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` items lost before they reached the queue (a kernel ring buffer
        overflow, a record the reader could not decode), at this point of the stream."""
        if count < 1:
            return
        with self._ready:
            self._record_drop(reason, count)
            self._ready.notify()

    def close(self) -> None:
        """Refuse further puts (they count as ``closed`` drops) and wake waiting consumers;
        items already queued can still be taken."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def get_batch(self, max_items: int, timeout: float | None = None) -> QueueBatch[T]:
        """Take up to ``max_items`` items, waiting up to ``timeout`` seconds (``None``: until
        something arrives or the queue is closed) when there is nothing to take.

        Returns at once with whatever is there; an empty batch means the wait timed out, or
        the queue is closed and drained.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, not {max_items}")
        with self._ready:
            self._ready.wait_for(
                lambda: self._items or self._losses or self._closed, timeout=timeout
            )
            count = min(max_items, len(self._items))
            items = [self._items.popleft() for _ in range(count)]
            first_index = self._taken
            self._taken += count
            lost, lost_at = self._take_losses(first_index)
            return QueueBatch(items=items, lost=lost, lost_at=lost_at)

    def counters(self) -> QueueCounters:
        with self._ready:
            return QueueCounters(
                put=self._put,
                dropped=dict(self._dropped),
                high_water=self._high_water,
                size=len(self._items),
            )

    def _record_drop(self, reason: str, count: int) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + count
        if self._losses and self._losses[-1][0] == self._put:
            self._losses[-1][1] += count
        else:
            self._losses.append([self._put, count])

    def _take_losses(self, first_index: int) -> tuple[int, int]:
        """Losses that happened before the end of the batch just taken (which started at
        put number ``first_index``): their total, and where in the batch the first was."""
        lost = lost_at = 0
        while self._losses and self._losses[0][0] <= self._taken:
            at, count = self._losses.popleft()
            if lost == 0:
                lost_at = max(0, at - first_index)
            lost += count
        return lost, lost_at


def gap_event(  # noqa: PLR0913  (every field of the gap is named by the caller)
    *,
    host_id: str,
    count: int,
    timestamp: int,
    event_id: str,
    dataset: str,
    process: Process | None = None,
) -> Event:
    """A canonical ``gap`` event: ``count`` events were lost on ``host_id``.

    ``process`` names the one process the loss concerns; without it the loss is host-wide
    (entity id ``""``), which marks every open edge of the host incomplete downstream.
    """
    return Event(
        timestamp=timestamp,
        event=EventInfo(
            action=Action.GAP, id=event_id, outcome="unknown", dataset=dataset, count=count
        ),
        host=Host(id=host_id),
        process=process if process is not None else Process(entity_id="", pid=0),
    )


def events_with_gap(
    batch: QueueBatch[Event], *, host_id: str, dataset: str = "queue"
) -> list[Event]:
    """The batch's events with one ``gap`` event standing where its first loss happened.

    The gap takes the timestamp of the event after it (or before it, or the current time),
    so it sorts into the stream where the loss was.
    """
    items = batch.items
    if batch.lost == 0:
        return items
    at = min(batch.lost_at, len(items))
    if at < len(items):
        timestamp = items[at].timestamp
    elif items:
        timestamp = items[-1].timestamp
    else:
        timestamp = time.time_ns()
    gap = gap_event(
        host_id=host_id,
        count=batch.lost,
        timestamp=timestamp,
        event_id=f"gap:{dataset}:{time.time_ns()}",
        dataset=dataset,
    )
    return [*items[:at], gap, *items[at:]]
