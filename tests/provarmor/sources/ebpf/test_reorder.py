"""Records read from several CPUs' buffers, one buffer after another, come out of the
reorder stage in record-time order, each exactly once; what arrives too late is counted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.sources.ebpf import wire
from provarmor.sources.ebpf.decoder import EbpfCounters
from provarmor.sources.ebpf.reorder import ReorderBuffer

MS = 1_000_000


def _header(ns: int, tid: int = 1, kind: str = "O") -> wire.Header:
    return wire.Header(kind, ns, tid, tid, 0, (), f"/r/{ns}")


def _feed(stage: ReorderBuffer, lines: list[wire.Line]) -> list[wire.Line]:
    out: list[wire.Line] = []
    for number, line in enumerate(lines, 1):
        out += [parsed for _, parsed in stage.push(line, f"t:{number}")]
    return out + [parsed for _, parsed in stage.drain()]


def _times(lines: list[wire.Line]) -> list[int]:
    return [line.ns for line in lines if isinstance(line, wire.Header | wire.StringPart)]


def _read_in_turns(streams: list[list[int]], batches: list[int]) -> list[wire.Line]:
    """What bpftrace writes: a batch from one CPU's buffer, then one from the next ..."""
    cursors = [0] * len(streams)
    lines: list[wire.Line] = []
    turn = 0
    while any(cursor < len(stream) for cursor, stream in zip(cursors, streams, strict=True)):
        cpu = turn % len(streams)
        size = batches[turn % len(batches)]
        taken = streams[cpu][cursors[cpu] : cursors[cpu] + size]
        lines += [_header(ns, tid=cpu + 1) for ns in taken]
        cursors[cpu] += len(taken)
        turn += 1
    return lines


_STREAM = st.lists(st.integers(1, 3 * MS), max_size=40).map(
    lambda steps: [sum(steps[: i + 1]) for i in range(len(steps))]
)


@settings(max_examples=200, deadline=None)
@given(
    streams=st.lists(_STREAM, min_size=1, max_size=4),
    batches=st.lists(st.integers(1, 8), min_size=1, max_size=5),
    delay_ms=st.sampled_from([0, 1, 5, 50, 1000]),
)
def test_every_record_comes_out_once_and_in_order_unless_counted_late(
    streams: list[list[int]], batches: list[int], delay_ms: int
) -> None:
    lines = _read_in_turns(streams, batches)
    counters = EbpfCounters()
    out = _feed(ReorderBuffer(delay_ms * MS, counters), lines)
    assert sorted(map(id, out)) == sorted(map(id, lines))  # nothing lost, nothing twice
    if delay_ms == 0:
        assert out == lines
        return
    newest = 0
    lateness = 0
    for ns in _times(lines):
        lateness = max(lateness, newest - ns)
        newest = max(newest, ns)
    if lateness <= delay_ms * MS:
        assert counters.reorder_late == 0
    if counters.reorder_late == 0:  # out of order only when a record came too late, counted
        assert _times(out) == sorted(_times(lines))
    assert counters.reorder_forced == 0


def test_a_childs_records_read_before_its_parents_come_out_after_them() -> None:
    counters = EbpfCounters()
    stage = ReorderBuffer(50 * MS, counters)
    child = [_header(30 * MS, tid=2, kind="F"), _header(31 * MS, tid=2)]
    parent = [_header(10 * MS, tid=1, kind="E"), _header(20 * MS, tid=1, kind="J")]
    assert stage.push(child[0], "t:1") == stage.push(child[1], "t:2") == []
    assert stage.push(parent[0], "t:3") == stage.push(parent[1], "t:4") == []
    due = stage.push(_header(80 * MS, tid=3), "t:5")
    assert [line for _, line in due] == [*parent, child[0]]  # 31 ms is not 50 ms old yet
    assert [location for location, _ in due] == ["t:3", "t:4", "t:1"]
    assert (counters.reordered, counters.reorder_late) == (2, 0)


def test_strings_stay_just_before_their_header() -> None:
    counters = EbpfCounters()
    stage = ReorderBuffer(5 * MS, counters)
    argv = [wire.StringPart(7, 40 * MS, "ls"), wire.StringPart(7, 40 * MS, "-l")]
    header = _header(40 * MS, tid=7, kind="V")
    other = _header(39 * MS, tid=8)
    out = _feed(stage, [*argv, header, other])
    assert out == [other, *argv, header]


def test_a_record_older_than_what_went_out_goes_out_at_once_and_is_counted() -> None:
    counters = EbpfCounters()
    stage = ReorderBuffer(5 * MS, counters)
    stage.push(_header(10 * MS), "t:1")
    assert len(stage.push(_header(20 * MS), "t:2")) == 1  # 10 ms is out
    late = _header(8 * MS, tid=2)
    assert stage.push(late, "t:3") == [("t:3", late)]
    assert counters.reorder_late == 1
    assert len(stage) == 1


def test_a_line_that_is_not_a_record_goes_after_everything_read_before_it() -> None:
    stage = ReorderBuffer(50 * MS, EbpfCounters())
    first, flush = _header(10 * MS), wire.IoTotals(((1, 0, 3, 0, 1, 100),))
    late = _header(5 * MS, tid=2)  # read after the flush, happened before it
    after = _header(12 * MS, tid=3)
    assert _feed(stage, [first, flush, late, after]) == [late, first, flush, after]


def test_the_start_and_end_markers_let_everything_out_first() -> None:
    stage = ReorderBuffer(50 * MS, EbpfCounters())
    records = [_header(12 * MS), _header(11 * MS, tid=2)]
    for number, record in enumerate(records, 1):
        assert stage.push(record, f"t:{number}") == []
    begin = _header(13 * MS, tid=0, kind="b")
    assert [line for _, line in stage.push(begin, "t:3")] == [records[1], records[0], begin]
    assert len(stage) == 0


def test_when_the_output_is_idle_everything_waiting_goes_out_in_order() -> None:
    stage = ReorderBuffer(50 * MS, EbpfCounters())
    records = [_header(30 * MS), _header(10 * MS, tid=2)]
    for number, record in enumerate(records, 1):
        assert stage.push(record, f"t:{number}") == []
    assert [line for _, line in stage.drain()] == records[::-1]
    assert stage.drain() == []


def test_when_too_many_wait_the_oldest_goes_out_early_and_is_counted() -> None:
    counters = EbpfCounters()
    stage = ReorderBuffer(1000 * MS, counters, limit=3)
    out = [line for n in range(5) for _, line in stage.push(_header((n + 1) * MS), f"t:{n}")]
    assert _times(out) == [1 * MS, 2 * MS]
    assert counters.reorder_forced == 2
    assert len(stage) == 3
