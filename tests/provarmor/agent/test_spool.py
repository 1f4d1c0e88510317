import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provarmor.agent.spool import HEADER_BYTES, SPOOL_FORMAT_VERSION, Spool, SpoolPosition
from provarmor.model.actions import Action
from provarmor.model.codec import MAX_RECORD_BYTES
from provarmor.model.errors import ConfigError, StorageError
from provarmor.model.event import Event
from provarmor.testing.factories import make_event

SRC = Path(__file__).resolve().parents[3] / "src"


def events(first, count, *, host="test-host"):
    """Events whose timestamp is their number, so order and gaps are easy to check."""
    return [
        make_event(Action.WRITE, ts=n, event_id=f"e{n}", path=f"/var/log/{n % 7}.log", host=host)
        for n in range(first, first + count)
    ]


def numbers(batch_events):
    return [e.timestamp for e in batch_events if e.event.action is not Action.GAP]


def read_all(spool, consumer="default", *, ack=True, size=1000):
    """Every event the consumer gets, acknowledging each batch (unless ack=False)."""
    got: list[Event] = []
    while True:
        batch = spool.read(consumer, size)
        if not batch.events:
            return got
        got.extend(batch.events)
        if not ack:
            return got
        spool.ack(consumer, batch.position)


def segments(directory):
    return sorted(p for p in Path(directory).iterdir() if p.suffix == ".seg")


# -- basic behaviour -------------------------------------------------------------------


def test_round_trip_keeps_every_field_and_the_order(tmp_path):
    stored = [
        make_event(Action.EXEC, pid=5, ppid=1, args=("/bin/sh", "-c", "id\n\x00")),
        make_event(Action.CONNECT, ip="::1", port=22),
        make_event(Action.RENAME, path="/new", original_path="/old"),
        *events(0, 500),
    ]
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=16 * 1024, fsync=True) as spool:
        spool.append(stored[:200])
        spool.append(stored[200:])
        assert read_all(spool) == stored
        assert spool.counters().appended == 503


def test_read_without_ack_returns_the_same_events_again(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 50))
        first = spool.read("default", 20)
        again = spool.read("default", 20)
        assert numbers(first.events) == list(range(20))
        assert again == first
        spool.ack("default", first.position)
        assert numbers(spool.read("default", 100).events) == list(range(20, 50))


def test_ack_survives_reopen_and_nothing_acknowledged_comes_back(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=True) as spool:
        spool.append(events(0, 40))
        batch = spool.read("default", 25)
        spool.ack("default", batch.position)
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=True) as spool:
        assert numbers(read_all(spool)) == list(range(25, 40))
        assert spool.counters().pending == 0
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=True) as spool:
        assert read_all(spool) == []


def test_reopen_appends_after_what_is_stored(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 10))
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(10, 10))
        assert numbers(read_all(spool)) == list(range(20))


def test_segments_roll_at_segment_bytes_and_acknowledged_ones_are_deleted(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=False) as spool:
        for n in range(0, 200, 10):
            spool.append(events(n, 10))
        files = segments(tmp_path)
        assert len(files) > 5
        assert all(f.stat().st_size <= 2048 for f in files)
        batch = spool.read("default", 100)
        spool.ack("default", batch.position)
        left = segments(tmp_path)
        assert len(left) < len(files)
        first_left = int(left[0].stem)
        assert first_left <= 100 < int(left[1].stem)
        assert numbers(read_all(spool)) == list(range(100, 200))
        # the active segment stays even when fully acknowledged; everything else is gone
        assert len(segments(tmp_path)) == 1
        counters = spool.counters()
        assert (counters.appended, counters.acknowledged, counters.pending) == (200, 200, 0)


def test_a_segment_is_kept_until_every_consumer_has_acknowledged_it(tmp_path):
    with Spool(
        tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=False, consumers=("a", "b")
    ) as spool:
        spool.append(events(0, 100))
        before = segments(tmp_path)
        assert numbers(read_all(spool, "a")) == list(range(100))
        assert segments(tmp_path) == before
        assert spool.counters().pending == 100
        assert numbers(read_all(spool, "b")) == list(range(100))
        assert len(segments(tmp_path)) == 1
        assert spool.counters().acknowledged == 100


def test_acknowledging_an_older_position_again_is_a_no_op(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 10))
        early = spool.read("default", 3).position
        spool.ack("default", spool.read("default", 8).position)
        spool.ack("default", early)
        assert numbers(spool.read("default", 10).events) == [8, 9]


def test_bad_use_is_refused_with_documented_errors(tmp_path):
    with pytest.raises(ConfigError, match="max_bytes"):
        Spool(tmp_path, max_bytes=1000, segment_bytes=4096, fsync=False)
    with pytest.raises(ConfigError, match="consumer"):
        Spool(tmp_path, max_bytes=1 << 20, fsync=False, consumers=("../x",))
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 3))
        with pytest.raises(ConfigError, match="not a consumer"):
            spool.read("other", 10)
        with pytest.raises(ValueError, match="past the spool's end"):
            spool.ack("default", SpoolPosition(sequence=4))
        with pytest.raises(StorageError, match="in use"):
            Spool(tmp_path, max_bytes=1 << 20, fsync=False)
    with pytest.raises(StorageError, match="closed"):
        spool.read("default", 1)


def test_concurrent_append_and_read_deliver_everything_once(tmp_path):
    got: list[int] = []
    with Spool(tmp_path, max_bytes=1 << 22, segment_bytes=8192, fsync=False) as spool:

        def produce():
            for n in range(0, 3000, 50):
                spool.append(events(n, 50))

        producer = threading.Thread(target=produce)
        producer.start()
        deadline = time.monotonic() + 20
        while len(got) < 3000 and time.monotonic() < deadline:
            batch = spool.read("default", 128)
            got.extend(numbers(batch.events))
            spool.ack("default", batch.position)
        producer.join()
    assert got == list(range(3000))


# -- loss: eviction, oversized events, corruption ---------------------------------------


def test_eviction_drops_oldest_segments_and_reports_one_gap(tmp_path):
    with Spool(tmp_path, max_bytes=4096, segment_bytes=1024, fsync=False) as spool:
        spool.append(events(0, 5))
        spool.ack("default", spool.read("default", 5).position)
        for n in range(5, 200, 5):
            spool.append(events(n, 5))
        assert sum(f.stat().st_size for f in segments(tmp_path)) <= 4096
        oldest = int(segments(tmp_path)[0].stem)
        counters = spool.counters()
        assert counters.evicted_events == oldest - 5
        assert counters.pending == 200 - oldest
        batch = spool.read("default", 1000)
    gap, *rest = batch.events
    assert gap.event.action is Action.GAP
    assert gap.event.count == oldest - 5 == batch.lost
    assert gap.event.dataset == "spool"
    assert gap.process.entity_id == ""
    assert (gap.host.id, gap.timestamp) == ("test-host", oldest)
    assert numbers(rest) == list(range(oldest, 200))
    assert counters.appended == counters.evicted_events + counters.pending + 5


def test_evicted_gap_is_shown_again_until_acknowledged_then_never(tmp_path):
    with Spool(tmp_path, max_bytes=4096, segment_bytes=1024, fsync=False) as spool:
        for n in range(0, 100, 5):
            spool.append(events(n, 5))
        first = spool.read("default", 3)
        assert first == spool.read("default", 3)
        assert first.events[0].event.action is Action.GAP
        spool.ack("default", first.position)
        assert Action.GAP not in [e.event.action for e in spool.read("default", 100).events]


def test_oversized_event_is_stored_as_a_gap_for_its_process(tmp_path):
    huge = make_event(Action.EXEC, pid=7, args=("x" * (MAX_RECORD_BYTES + 10),))
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append([*events(0, 2), huge, *events(2, 1)])
        got = spool.read("default", 10).events
        assert spool.counters().oversized_events == 1
    assert [e.event.action for e in got] == [Action.WRITE, Action.WRITE, Action.GAP, Action.WRITE]
    assert got[2].process.entity_id == huge.process.entity_id
    assert got[2].event.count == 1


def frame_offsets(path):
    data = path.read_bytes()
    offsets, offset = [], HEADER_BYTES
    while offset < len(data):
        offsets.append(offset)
        (size,) = struct.unpack_from("<I", data, offset)
        offset += 4 + size
    return offsets


def test_undecodable_frame_is_skipped_counted_and_shown_as_gap(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=False) as spool:
        spool.append(events(0, 30))
    first = segments(tmp_path)[0]
    third = frame_offsets(first)[2]
    data = bytearray(first.read_bytes())
    data[third + 4 : third + 8] = b"\xc1\xc1\xc1\xc1"  # never-used MessagePack byte
    first.write_bytes(bytes(data))
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=False) as spool:
        got = spool.read("default", 100).events
        again = spool.read("default", 100).events
        counters = spool.counters()
    assert got == again
    assert numbers(got) == [0, 1, *range(3, 30)]
    assert got[2].event.action is Action.GAP
    assert got[2].event.count == 1
    assert counters.corrupt_frames == 1


def test_broken_length_in_a_closed_segment_loses_only_the_rest_of_that_segment(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=False) as spool:
        spool.append(events(0, 30))
    first, second = segments(tmp_path)[:2]
    offsets = frame_offsets(first)
    data = bytearray(first.read_bytes())
    data[offsets[1] : offsets[1] + 4] = struct.pack("<I", MAX_RECORD_BYTES + 1)
    first.write_bytes(bytes(data))
    lost = int(second.stem) - 1
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=False) as spool:
        got = read_all(spool)
        assert spool.counters().corrupt_frames == lost
    assert numbers(got) == [0, *range(int(second.stem), 30)]
    assert got[1].event.count == lost


def test_segment_with_unreadable_header_becomes_a_gap(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=False) as spool:
        spool.append(events(0, 30))
    first, second = segments(tmp_path)[:2]
    first.write_bytes(b"JUNK" + first.read_bytes()[4:])
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=2048, fsync=False) as spool:
        got = read_all(spool)
    assert got[0].event.action is Action.GAP
    assert got[0].event.count == int(second.stem)
    assert numbers(got) == list(range(int(second.stem), 30))


def test_unsupported_format_version_is_a_storage_error(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 3))
    path = segments(tmp_path)[0]
    data = bytearray(path.read_bytes())
    data[4:6] = struct.pack("<H", SPOOL_FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="format version 2 is not supported"):
        Spool(tmp_path, max_bytes=1 << 20, fsync=False)
    # the failed open released the directory
    path.write_bytes(bytes(data[:4]) + struct.pack("<H", SPOOL_FORMAT_VERSION) + data[6:])
    Spool(tmp_path, max_bytes=1 << 20, fsync=False).close()


def test_unreadable_position_file_is_a_storage_error(tmp_path):
    Spool(tmp_path, max_bytes=1 << 20, fsync=False).close()
    (tmp_path / "default.ack").write_bytes(b"{not json")
    with pytest.raises(StorageError, match="unreadable consumer position"):
        Spool(tmp_path, max_bytes=1 << 20, fsync=False)


# -- crash recovery -----------------------------------------------------------------------


def test_torn_last_frame_is_truncated_on_open_and_appends_continue(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 10))
    path = segments(tmp_path)[-1]
    size = path.stat().st_size
    last = frame_offsets(path)[-1]
    os.truncate(path, last + 7)
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        assert spool.counters().truncated_tail_bytes == 7
        assert path.stat().st_size == last
        spool.append(events(9, 3))
        assert numbers(read_all(spool)) == list(range(12))
        assert spool.counters().corrupt_frames == 0
    assert size > last


def test_torn_new_segment_is_removed_on_open(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 5))
    torn = tmp_path / f"{5:020d}.seg"
    torn.write_bytes(b"PASP\x01")
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        assert spool.counters().truncated_tail_bytes == 5
        assert not torn.exists()
        spool.append(events(5, 5))
        assert numbers(read_all(spool)) == list(range(10))


def test_acknowledged_numbers_are_never_reused_after_the_tail_was_lost(tmp_path):
    """Power loss with fsync off can lose acknowledged events: new events must not take
    their sequence numbers, or the consumer would skip them as already handled."""
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 10))
        spool.ack("default", spool.read("default", 10).position)
    path = segments(tmp_path)[-1]
    os.truncate(path, frame_offsets(path)[6])
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(100, 3))
        assert numbers(read_all(spool)) == [100, 101, 102]


CHILD = textwrap.dedent(
    """
    import os, sys
    from provarmor.agent.spool import Spool
    from provarmor.model.actions import Action
    from provarmor.testing.factories import make_event

    spool = Spool(sys.argv[1], max_bytes=1 << 30, segment_bytes=64 * 1024, fsync=False)
    n = 0
    while True:
        size = 1 + n % 97
        spool.append([make_event(Action.WRITE, ts=i, event_id=str(i), path="/tmp/f")
                      for i in range(n, n + size)])
        n += size
        os.write(1, b"appended %d\\n" % (n - 1))
        if n % 5 == 0:
            batch = spool.read("default", 150)
            os.write(1, b"acking %d\\n" % batch.position.sequence)
            spool.ack("default", batch.position)
            os.write(1, b"acked %d\\n" % batch.position.sequence)
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_a_random_moment_loses_nothing_and_repeats_nothing(tmp_path, seed):
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    directory = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen(
        [sys.executable, str(child), str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        first_line = process.stdout.readline()
        assert first_line.startswith(b"appended"), process.stderr.read()
        time.sleep(random.Random(seed).uniform(0.02, 0.4))
        process.send_signal(signal.SIGKILL)
        output = first_line + process.stdout.read()
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    said: dict[str, list[int]] = {"appended": [], "acking": [], "acked": []}
    for line in output.decode().splitlines(keepends=True):
        if line.endswith("\n"):  # a line cut by the kill says nothing
            word, number = line.split()
            said[word].append(int(number))
    last_appended = said["appended"][-1]
    acknowledged = said["acked"][-1] if said["acked"] else 0
    possible_starts = {acknowledged, said["acking"][-1] if said["acking"] else 0}

    with Spool(directory, max_bytes=1 << 30, segment_bytes=64 * 1024, fsync=False) as spool:
        got = read_all(spool)
        counters = spool.counters()
    with Spool(directory, max_bytes=1 << 30, segment_bytes=64 * 1024, fsync=False) as spool:
        assert read_all(spool) == []
    delivered = [e.timestamp for e in got]
    assert Action.GAP not in {e.event.action for e in got}
    assert counters.corrupt_frames == 0
    if not delivered:  # killed right after the consumer caught up
        assert max(possible_starts) > last_appended
        return
    assert delivered[0] in possible_starts
    assert delivered == list(range(delivered[0], delivered[0] + len(delivered)))
    assert delivered[-1] >= last_appended


# -- format fixture and property tests ------------------------------------------------------


def test_format_version_1_fixture_still_reads(tmp_path, data_dir):
    directory = tmp_path / "v1"
    shutil.copytree(data_dir / "spool" / "v1", directory)
    with Spool(directory, max_bytes=1 << 20, segment_bytes=4096, fsync=False) as spool:
        got = read_all(spool)
        assert spool.counters().corrupt_frames == 0
    assert len(got) == 9
    assert {e.host.id for e in got} == {"fixture-host"}
    assert got[0].event.action is Action.EXEC
    assert got[0].process.executable == "/usr/bin/curl"
    assert [e.event.action for e in got[1:3]] == [Action.OPEN, Action.OPEN]
    assert got[1].file.path == "/etc/ld.so.cache"


BASE_EVENTS = events(0, 12)


def write_base(directory):
    with Spool(directory, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(BASE_EVENTS)
    return segments(directory)[-1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(min_size=1, max_size=200))
def test_garbage_after_the_last_frame_is_counted_never_raised(garbage):
    with tempfile.TemporaryDirectory() as name:
        path = write_base(name)
        with path.open("ab") as file:
            file.write(garbage)
        with Spool(name, max_bytes=1 << 20, fsync=False) as spool:
            got = read_all(spool)
            spool.append(events(500, 2))
            after = read_all(spool)
            counters = spool.counters()
    assert got[: len(BASE_EVENTS)] == BASE_EVENTS
    assert all(e.event.action is Action.GAP for e in got[len(BASE_EVENTS) :])
    assert numbers(after) == [500, 501]
    assert counters.truncated_tail_bytes <= len(garbage)
    assert counters.truncated_tail_bytes > 0 or counters.corrupt_frames > 0
    lost = sum(e.event.count for e in got + after if e.event.action is Action.GAP)
    assert lost == counters.corrupt_frames


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_a_cut_at_any_byte_keeps_exactly_the_complete_frames(cut):
    with tempfile.TemporaryDirectory() as name:
        path = write_base(name)
        offsets = [*frame_offsets(path), path.stat().st_size]
        cut %= offsets[-1] + 1
        os.truncate(path, cut)
        with Spool(name, max_bytes=1 << 20, fsync=False) as spool:
            got = read_all(spool)
            counters = spool.counters()
    complete = sum(1 for end in offsets[1:] if end <= cut) if cut >= HEADER_BYTES else 0
    assert got == BASE_EVENTS[:complete]
    assert counters.corrupt_frames == 0
    kept = offsets[complete] if cut >= HEADER_BYTES else 0
    assert counters.truncated_tail_bytes == cut - kept


@pytest.mark.slow
def test_append_and_read_each_sustain_50k_events_per_second(tmp_path):
    stored = events(0, 30_000)
    best_append = best_read = 0.0
    for attempt in range(3):
        with Spool(tmp_path / str(attempt), max_bytes=1 << 30, fsync=False) as spool:
            started = time.perf_counter()
            for n in range(0, len(stored), 1000):
                spool.append(stored[n : n + 1000])
            best_append = max(best_append, len(stored) / (time.perf_counter() - started))
            started = time.perf_counter()
            got = read_all(spool)
            best_read = max(best_read, len(got) / (time.perf_counter() - started))
    assert best_append >= 50_000
    assert best_read >= 50_000


def test_a_hold_bounds_reads_across_segments_until_acknowledged(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, segment_bytes=400, fsync=False) as spool:
        spool.append(events(0, 30))
        assert len(segments(tmp_path)) > 2
        spool.hold("default", SpoolPosition(sequence=17))
        batch = spool.read("default", 100)
        assert numbers(batch.events) == list(range(17))
        assert batch.position.sequence == 17
        assert numbers(spool.read("default", 5).events) == list(range(5))
        spool.ack("default", batch.position)
        assert spool.held("default") is None
        assert numbers(spool.read("default", 100).events) == list(range(17, 30))


def test_a_hold_survives_reopen_and_a_smaller_ack_keeps_it(tmp_path):
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 10))
        spool.hold("default", spool.read("default", 6).position)
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(10, 10))  # more arrives before the retry
        assert spool.held("default") == 6
        spool.ack("default", SpoolPosition(sequence=2))
        assert numbers(spool.read("default", 100).events) == list(range(2, 6))
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        assert spool.held("default") == 6
        spool.ack("default", spool.read("default", 100).position)
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        assert spool.held("default") is None
        assert numbers(spool.read("default", 100).events) == list(range(6, 20))


def test_an_unreadable_hold_is_named_and_ignored(tmp_path, caplog):
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        spool.append(events(0, 10))
        spool.hold("default", spool.read("default", 4).position)
    (tmp_path / "default.hold").write_bytes(b"")  # a power loss before the data was written
    with Spool(tmp_path, max_bytes=1 << 20, fsync=False) as spool:
        assert spool.held("default") is None
        assert numbers(spool.read("default", 100).events) == list(range(10))
    assert str(tmp_path / "default.hold") in caplog.text
