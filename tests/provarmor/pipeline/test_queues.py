import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.pipeline.queues import (
    CLOSED,
    FULL,
    BoundedQueue,
    QueueBatch,
    events_with_gap,
    gap_event,
)
from provarmor.testing.factories import make_event


def test_items_come_out_in_order_in_batches_of_at_most_max_items():
    queue = BoundedQueue[int](10)
    for n in range(7):
        assert queue.put_nowait(n)
    assert queue.get_batch(4, timeout=0).items == [0, 1, 2, 3]
    assert queue.get_batch(4, timeout=0).items == [4, 5, 6]
    counters = queue.counters()
    assert (counters.put, counters.size, counters.high_water) == (7, 0, 7)


def test_a_full_queue_drops_without_blocking_and_counts_the_drop():
    queue = BoundedQueue[int](3)
    accepted = [queue.put_nowait(n) for n in range(5)]
    assert accepted == [True, True, True, False, False]
    counters = queue.counters()
    assert counters.dropped == {FULL: 2}
    assert counters.dropped_total == 2
    assert (counters.put, counters.high_water, counters.size) == (3, 3, 3)


def test_drops_reported_upstream_are_counted_by_reason():
    queue = BoundedQueue[int](3)
    queue.drop("kernel_lost", 40)
    queue.drop("kernel_lost", 2)
    queue.drop("undecodable")
    queue.drop("ignored", 0)
    assert queue.counters().dropped == {"kernel_lost": 42, "undecodable": 1}


def test_get_batch_waits_for_the_timeout_then_returns_empty():
    queue = BoundedQueue[int](3)
    started = time.monotonic()
    batch = queue.get_batch(10, timeout=0.05)
    assert batch == QueueBatch(items=[])
    assert time.monotonic() - started >= 0.045


def test_get_batch_wakes_as_soon_as_an_item_arrives():
    queue = BoundedQueue[str](3)
    timer = threading.Timer(0.05, queue.put_nowait, args=("x",))
    timer.start()
    started = time.monotonic()
    batch = queue.get_batch(10, timeout=10)
    timer.join()
    assert batch.items == ["x"]
    assert time.monotonic() - started < 5


def test_close_refuses_puts_keeps_queued_items_and_wakes_waiters():
    queue = BoundedQueue[int](3)
    queue.put_nowait(1)
    queue.close()
    assert not queue.put_nowait(2)
    assert queue.closed
    assert queue.counters().dropped == {CLOSED: 1}
    assert queue.get_batch(10).items == [1]
    # the 'closed' drop is reported once, then an empty closed queue returns at once
    assert queue.get_batch(10, timeout=None) == QueueBatch(items=[])

    waiting = BoundedQueue[int](3)
    threading.Timer(0.05, waiting.close).start()
    assert waiting.get_batch(10, timeout=None).items == []


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="capacity"):
        BoundedQueue[int](0)
    with pytest.raises(ValueError, match="max_items"):
        BoundedQueue[int](1).get_batch(0)


def test_a_loss_is_reported_where_it_happened_in_the_stream():
    queue = BoundedQueue[str](3)
    for item in "abc":
        queue.put_nowait(item)
    queue.put_nowait("d")  # dropped: it came after c
    first = queue.get_batch(2, timeout=0)
    assert first == QueueBatch(items=["a", "b"])
    queue.put_nowait("e")
    second = queue.get_batch(10, timeout=0)
    assert second == QueueBatch(items=["c", "e"], lost=1, lost_at=1)
    assert queue.get_batch(10, timeout=0) == QueueBatch(items=[])


def test_losses_in_one_batch_are_summed_at_the_first():
    queue = BoundedQueue[int](2)
    queue.drop("kernel_lost", 3)
    queue.put_nowait(1)
    queue.put_nowait(2)
    queue.put_nowait(3)
    assert queue.get_batch(10, timeout=0) == QueueBatch(items=[1, 2], lost=4, lost_at=0)


def test_events_with_gap_puts_one_gap_where_the_loss_was():
    queue = BoundedQueue[Event](2)
    a, b, c = (make_event(Action.OPEN, ts=ts, path="/etc/passwd") for ts in (10, 20, 30))
    queue.put_nowait(a)
    queue.put_nowait(b)
    queue.put_nowait(make_event(Action.OPEN, ts=25))  # dropped
    queue.drop("kernel_lost", 4)
    assert [e.timestamp for e in events_with_gap(queue.get_batch(1, timeout=0), host_id="h")] == [
        10
    ]
    queue.put_nowait(c)
    got = events_with_gap(queue.get_batch(10, timeout=0), host_id="h1")
    assert [e.event.action for e in got] == [Action.OPEN, Action.GAP, Action.OPEN]
    gap = got[1]
    assert gap.event.count == 5
    assert gap.host.id == "h1"
    assert gap.timestamp == 30
    assert gap.process.entity_id == ""
    assert gap.event.dataset == "queue"


def test_drops_on_an_empty_queue_still_reach_the_next_reader():
    queue = BoundedQueue[Event](2)
    queue.drop("kernel_lost", 7)
    before = time.time_ns()
    got = events_with_gap(queue.get_batch(10, timeout=1), host_id="h", dataset="ebpf")
    assert len(got) == 1
    assert (got[0].event.action, got[0].event.count, got[0].event.dataset) == (
        Action.GAP,
        7,
        "ebpf",
    )
    assert got[0].timestamp >= before
    assert events_with_gap(queue.get_batch(10, timeout=0), host_id="h") == []


def test_gap_event_follows_the_action_contract():
    process_gap = gap_event(
        host_id="h",
        count=3,
        timestamp=9,
        event_id="g1",
        dataset="spool",
        process=make_event(Action.EXEC, pid=4).process,
    )
    assert process_gap.event.action is Action.GAP
    assert process_gap.event.outcome == "unknown"
    assert process_gap.process.pid == 4
    assert process_gap.file is None


def test_threads_hand_off_everything_except_what_is_counted_as_dropped():
    queue = BoundedQueue[int](64)
    total = 20_000
    received = []
    lost = 0

    def produce():
        for n in range(total):
            queue.put_nowait(n)
        queue.close()

    producer = threading.Thread(target=produce)
    producer.start()
    while True:
        batch = queue.get_batch(50, timeout=5)
        received.extend(batch.items)
        lost += batch.lost
        if not batch.items and not batch.lost and queue.closed:
            break
    producer.join()
    counters = queue.counters()
    assert received == sorted(received)
    assert len(received) + counters.dropped_total == total
    assert lost == counters.dropped_total
    assert counters.high_water <= 64


@settings(max_examples=100, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=5),
    steps=st.lists(st.one_of(st.integers(0, 99), st.just(-1)), max_size=60),
)
def test_every_put_is_delivered_or_reported_lost_at_its_place(capacity, steps):
    """Against a model: a put is either delivered or counted, and (one item per batch, so
    no two loss points share a batch) every loss is reported exactly where it happened."""
    queue = BoundedQueue[int](capacity)
    expected: list[int | None] = []  # the stream with None where items were lost
    seen: list[int | None] = []
    for step in steps:
        if step == -1:
            batch = queue.get_batch(1, timeout=0)
            seen.extend(batch.items[: batch.lost_at])
            seen.extend([None] * batch.lost)
            seen.extend(batch.items[batch.lost_at :])
        elif queue.put_nowait(step):
            expected.append(step)
        else:
            expected.append(None)
    while (batch := queue.get_batch(1, timeout=0)).items or batch.lost:
        seen.extend(batch.items[: batch.lost_at])
        seen.extend([None] * batch.lost)
        seen.extend(batch.items[batch.lost_at :])
    assert seen == expected
