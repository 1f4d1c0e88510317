"""The agent's on-disk spool: a bounded directory of segment files holding canonical events
until every consumer has acknowledged them.

Why one module: the file format, crash recovery and the read/ack walk share one set of
invariants (sequence numbers, segment boundaries) that are easier to check side by side.

Layout of a spool directory::

    00000000000000000000.seg   segment: header, then one frame per event
    00000000000000004711.seg   (named by the sequence number of its first event)
    default.ack                a consumer's acknowledged position (JSON, replaced atomically)
    default.hold               the end of the batch it is sending (JSON padded to 64 bytes,
                               overwritten in place by one write)
    spool.lock                 flock()ed while a Spool has the directory open

A segment starts with ``PASP``, the spool format version (u16) and its first sequence number
(u64), followed by a :mod:`provarmor.model.codec` binary stream: the ``PAEV`` header and
length-prefixed MessagePack frames, one per event. Event ``first + i`` is the i-th frame.

Guarantees (the agent may be killed with SIGKILL at any instant):

* ``append`` returns once the batch has been handed to the kernel with ``write(2)``. From
  then on it survives a crash or kill of the agent process. With ``fsync=True`` it has
  also been ``fdatasync``ed, so it survives a power loss or kernel crash; with
  ``fsync=False`` a power loss may lose the last few seconds of appends.
* A kill during ``append`` keeps a prefix of that batch: complete frames are kept, a torn
  last frame is cut off when the spool is next opened (counted in ``truncated_tail_bytes``).
* ``ack`` returns once the position file has been written to a temporary file, fsynced and
  renamed over the old one (and, with ``fsync=True``, the directory fsynced): acknowledged
  events are never delivered again after a reopen. Unacknowledged events are delivered
  again (at-least-once), in order, each sequence number once per read walk.
* ``hold`` records the end of a batch about to be sent (one ``pwrite`` of a fixed-size
  record, ``fdatasync``ed with ``fsync=True``: it survives a kill either way; a rename per
  batch would cost a flush on ext4). Until the consumer acknowledges that far, every read
  stops there, after a reopen too: a batch whose receiver committed it without the sender
  hearing so is sent again with the same bounds, and a receiver that knows batches by their
  end recognises it. An unreadable hold file (a power loss with ``fsync=False``) is logged
  and ignored: reads are then unbounded, as without a hold.
* Loss is never silent: events evicted to respect ``max_bytes`` and frames that cannot be
  decoded are reported to every consumer that had not acknowledged them, as one ``gap``
  event per contiguous run of lost sequence numbers, and counted.

This module must not know about transports or what consumes the events.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Self

import msgspec

from provarmor.model import codec
from provarmor.model.errors import ConfigError, StorageError
from provarmor.model.event import Event, Process
from provarmor.pipeline.queues import gap_event
from provarmor.storage.private import private_dir

SPOOL_FORMAT_VERSION = 1
SEGMENT_MAGIC = b"PASP"
_SEGMENT_HEADER = struct.Struct("<4sHQ")
_STREAM_HEADER = codec.encode_binary_header()
HEADER_BYTES = _SEGMENT_HEADER.size + len(_STREAM_HEADER)
"""Bytes before the first frame of a segment."""
_FRAME = struct.Struct("<I")
"""The codec's frame prefix: payload length, little-endian u32."""
_READ_CHUNK = 1 << 20
_SEGMENT_NAME = re.compile(r"^(\d{20})\.seg$")
_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ACK_SUFFIX = ".ack"
_HOLD_SUFFIX = ".hold"
_HOLD_BYTES = 64
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024

log = logging.getLogger(__name__)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Event)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolPosition:
    """Where a consumer's next read starts; treat as opaque and hand it back to ``ack``.

    ``sequence`` is the number of the next event; ``segment`` and ``offset`` locate its
    frame on disk when known (``segment`` -1 when not), so reads need not rescan.
    """

    sequence: int
    segment: int = -1
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolBatch:
    """Events for one consumer, in order, with a ``gap`` event where any were lost."""

    events: list[Event]
    position: SpoolPosition
    """Acknowledge this once ``events`` are safely handled."""
    lost: int = 0
    """Lost events reported by the ``gap`` events in ``events``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolCounters:
    """Counts since this :class:`Spool` was opened, except the gauges ``pending``/``disk_bytes``."""

    appended: int
    acknowledged: int
    """Events acknowledged by every consumer."""
    pending: int
    """Events on disk not yet acknowledged by every consumer."""
    evicted_events: int
    """Unacknowledged events deleted to keep the directory under ``max_bytes``."""
    truncated_tail_bytes: int
    """Bytes of torn frames (or a torn segment) cut off the end of the spool on open."""
    corrupt_frames: int
    """Stored events that could not be read back (bad payload, frame cut off, bad header)."""
    oversized_events: int
    """Events too large for a frame, stored as a ``gap`` event for their process instead."""
    disk_bytes: int


class _PositionFile(msgspec.Struct, kw_only=True):
    format: int
    sequence: int
    segment: int = -1
    offset: int = 0


class _HoldFile(msgspec.Struct, kw_only=True):
    format: int
    held: int


@dataclass(slots=True)
class _Segment:
    first: int
    path: Path
    size: int
    readable: bool = True


class _FrameReader:
    """Reads a segment's frames forward from ``offset`` (up to byte ``end``), in large chunks.

    ``broken`` turns true when a frame starting before ``end`` is cut off or has an
    impossible length (zero, or over the codec's record limit): nothing after it can be
    located.
    """

    def __init__(self, file: BinaryIO, *, offset: int, end: int) -> None:
        self._file = file
        self.offset = offset
        self._end = end
        self._buffer = b""
        self._base = offset
        self.broken = False

    def take(self, limit: int) -> list[memoryview]:
        """Up to ``limit`` frame payloads; fewer at the end of the segment or where broken."""
        payloads: list[memoryview] = []
        need = _FRAME.size
        while len(payloads) < limit and not self.broken and self.offset < self._end:
            if self.offset + need > self._end:
                self.broken = True
                break
            self._refill(need)
            need = self._scan(payloads, limit)
        return payloads

    def skip(self, count: int) -> bool:
        """Step over ``count`` frames; False when fewer than that could be located."""
        while count > 0:
            taken = len(self.take(min(count, 4096)))
            if taken == 0:
                return False
            count -= taken
        return True

    def _refill(self, need: int) -> None:
        local = self.offset - self._base
        if local + need <= len(self._buffer):
            return
        self._file.seek(self.offset)
        self._buffer = self._file.read(max(_READ_CHUNK, need))
        self._base = self.offset
        if len(self._buffer) < need:
            self.broken = True

    def _scan(self, payloads: list[memoryview], limit: int) -> int:
        """Take the complete frames in the buffer; returns the bytes the next frame needs."""
        buffer = self._buffer
        view = memoryview(buffer)
        local = self.offset - self._base
        available = min(len(buffer), self._end - self._base)
        need = _FRAME.size
        while len(payloads) < limit and not self.broken and local + _FRAME.size <= available:
            (size,) = _FRAME.unpack_from(buffer, local)
            start = local + _FRAME.size
            if size == 0 or size > codec.MAX_RECORD_BYTES or self._base + start + size > self._end:
                self.broken = True
            elif start + size > available:
                need = _FRAME.size + size
                break
            else:
                payloads.append(view[start : start + size])
                local = start + size
        self.offset = self._base + local
        return need


@dataclass(slots=True)
class _BatchBuilder:
    """Collects one read's events, turning each run of lost sequence numbers into a gap."""

    consumer: str
    fallback: Event | None
    events: list[Event] = field(default_factory=list)
    delivered: int = 0
    lost: int = 0
    _run: int = 0
    _run_first: int = 0

    def lose(self, first: int, count: int) -> None:
        if count <= 0:
            return
        if self._run == 0:
            self._run_first = first
        self._run += count
        self.lost += count

    def add(self, event: Event) -> None:
        if self._run:
            self._close_run(event.host.id, event.timestamp)
        self.events.append(event)
        self.delivered += 1

    def finish(self) -> list[Event]:
        near = self.events[-1] if self.events else self.fallback
        if self._run:
            self._close_run(
                near.host.id if near else "", near.timestamp if near else time.time_ns()
            )
        return self.events

    def _close_run(self, host_id: str, timestamp: int) -> None:
        self.events.append(
            gap_event(
                host_id=host_id,
                count=self._run,
                timestamp=timestamp,
                event_id=f"gap:spool:{self.consumer}:{self._run_first}",
                dataset="spool",
            )
        )
        self._run = 0


class Spool:
    """A bounded, crash-safe FIFO of events on disk with per-consumer acknowledgements.

    Args:
        directory: created if missing; one Spool at a time may hold it (``flock``).
        max_bytes: the directory's size limit. When appends push it past the limit, the
            oldest segments are deleted even if unacknowledged (counted as evicted, and
            reported to the consumers as a gap).
        segment_bytes: a segment is closed and a new one started past this size (default
            8 MiB, or a quarter of ``max_bytes`` when that is less). Eviction works a segment
            at a time.
        fsync: ``fdatasync`` every append (survives power loss) or not (survives a kill).
        consumers: the readers whose acknowledgements decide what is deleted. A new name
            starts at the oldest event on disk.

    Raises:
        ConfigError: a limit or consumer name is invalid.
        StorageError: the directory is in use, unreadable, or of an unknown format version.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        max_bytes: int,
        segment_bytes: int | None = None,
        fsync: bool,
        consumers: Sequence[str] = ("default",),
    ) -> None:
        if segment_bytes is None:
            segment_bytes = max(HEADER_BYTES + 1, min(DEFAULT_SEGMENT_BYTES, max_bytes // 4))
        _check_settings(max_bytes=max_bytes, segment_bytes=segment_bytes, consumers=consumers)
        self._directory = Path(directory)
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._positions: dict[str, SpoolPosition] = {}
        self._held: dict[str, int] = {}
        self._next_seq = 0
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._last_event: Event | None = None
        self._corrupt_mark = 0
        self._counts = dict.fromkeys(
            ("appended", "acknowledged", "evicted", "truncated", "corrupt", "oversized"), 0
        )
        try:
            self._open(list(consumers))
        except OSError as exc:
            self.close()
            raise StorageError(f"cannot open spool: {exc}", location=str(directory)) from exc
        except BaseException:
            self.close()
            raise

    # -- public API -------------------------------------------------------------------

    def append(self, events: Sequence[Event]) -> None:
        """Store a batch, in order, rolling to a new segment past ``segment_bytes``.

        Raises:
            StorageError: the disk refused the write; a prefix of the batch may be stored.
        """
        with self._lock:
            try:
                self._append(events)
            except OSError as exc:
                raise StorageError(
                    f"spool write failed: {exc}", location=str(self._directory)
                ) from exc

    def _append(self, events: Sequence[Event]) -> None:
        fd = self._writable_fd()
        buffer = bytearray()
        frames = 0
        for event in events:
            frame = self._frame(event)
            active = self._segments[-1]
            over = active.size + len(buffer) + len(frame) > self._segment_bytes
            if over and self._next_seq + frames > active.first:
                self._write(fd, buffer, frames)
                buffer.clear()
                frames = 0
                fd = self._roll()
            buffer += frame
            frames += 1
        self._write(fd, buffer, frames)
        if self._fsync and events:
            os.fdatasync(fd)
        if events:
            self._last_event = events[-1]
        self._enforce_limit()

    def read(self, consumer: str, max_events: int) -> SpoolBatch:
        """Up to ``max_events`` events after ``consumer``'s acknowledged position, and none
        at or after the end of the batch it holds (:meth:`hold`: a batch read again with the
        same bounds as before, e.g. one whose commit may have happened without its
        acknowledgement).

        Reading again without an ``ack`` returns the same events. Lost events (evicted or
        unreadable) come as one ``gap`` event per run, not counted in ``max_events``.
        """
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, not {max_events}")
        with self._lock:
            self._check_open()
            start = self._position_of(consumer)
            held = self._held_of(consumer)
            limit = self._next_seq if held is None else min(held, self._next_seq)
            return self._read_from(consumer, start, max_events, limit)

    def hold(self, consumer: str, position: SpoolPosition) -> None:
        """Record that ``consumer`` is sending the batch that ends at ``position`` (a token
        from :meth:`read`): reads stop there until it is acknowledged, after a reopen too.
        Holding where the consumer holds already writes nothing."""
        with self._lock:
            self._check_open()
            if position.sequence <= self._position_of(consumer).sequence:
                return
            if self._held.get(consumer) == position.sequence:
                return
            record = _HoldFile(format=SPOOL_FORMAT_VERSION, held=position.sequence)
            path = self._directory / f"{consumer}{_HOLD_SUFFIX}"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                try:
                    os.pwrite(fd, msgspec.json.encode(record).ljust(_HOLD_BYTES), 0)
                    if self._fsync:
                        os.fdatasync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StorageError(f"cannot store hold: {exc}", location=str(path)) from exc
            self._held[consumer] = position.sequence

    def held(self, consumer: str) -> int | None:
        """The end of the batch ``consumer`` holds (:meth:`hold`) until acknowledged."""
        with self._lock:
            self._check_open()
            return self._held_of(consumer)

    def ack(self, consumer: str, position: SpoolPosition) -> None:
        """Record that ``consumer`` has handled everything before ``position`` (a token from
        :meth:`read`); deletes segments every consumer has finished. Acknowledging an older
        position again is a no-op."""
        with self._lock:
            self._check_open()
            current = self._position_of(consumer)
            if position.sequence <= current.sequence:
                return
            if position.sequence > self._next_seq:
                raise ValueError(
                    f"position {position.sequence} is past the spool's end {self._next_seq}"
                )
            old_min = self._min_position()
            try:
                self._store_position(consumer, position)
            except OSError as exc:
                raise StorageError(f"cannot store position: {exc}", location=consumer) from exc
            low = self._segments[0].first if self._segments else self._next_seq
            self._counts["acknowledged"] += max(0, self._min_position() - max(old_min, low))
            self._delete_acknowledged()

    def counters(self) -> SpoolCounters:
        with self._lock:
            low = self._segments[0].first if self._segments else self._next_seq
            return SpoolCounters(
                appended=self._counts["appended"],
                acknowledged=self._counts["acknowledged"],
                pending=self._next_seq - max(low, min(self._min_position(), self._next_seq)),
                evicted_events=self._counts["evicted"],
                truncated_tail_bytes=self._counts["truncated"],
                corrupt_frames=self._counts["corrupt"],
                oversized_events=self._counts["oversized"],
                disk_bytes=sum(segment.size for segment in self._segments),
            )

    def close(self) -> None:
        """Close the files and release the directory; further calls raise StorageError."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self, consumers: list[str]) -> None:
        private_dir(self._directory)
        self._lock_fd = os.open(self._directory / "spool.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StorageError(
                "spool is in use by another process", location=str(self._directory)
            ) from None
        for leftover in self._directory.glob("*.tmp"):
            leftover.unlink()
        self._segments = self._load_segments()
        self._recover_tail()
        self._load_positions(consumers)
        self._delete_acknowledged()
        self._enforce_limit()

    def _load_segments(self) -> list[_Segment]:
        segments = []
        for path in self._directory.iterdir():
            match = _SEGMENT_NAME.match(path.name)
            if match is None:
                continue
            segment = _Segment(first=int(match.group(1)), path=path, size=path.stat().st_size)
            segment.readable = _header_is_valid(segment)
            segments.append(segment)
        segments.sort(key=lambda segment: segment.first)
        return segments

    def _recover_tail(self) -> None:
        """Drop a torn last segment, cut a torn frame off the new last one, and count."""
        while self._segments and not self._segments[-1].readable:
            torn = self._segments.pop()
            self._counts["truncated"] += torn.size
            torn.path.unlink()
        if not self._segments:
            return
        last = self._segments[-1]
        with last.path.open("rb") as file:
            reader = _FrameReader(file, offset=HEADER_BYTES, end=last.size)
            frames = 0
            while taken := len(reader.take(4096)):
                frames += taken
        if reader.offset < last.size:
            os.truncate(last.path, reader.offset)
            self._counts["truncated"] += last.size - reader.offset
            last.size = reader.offset
        self._next_seq = last.first + frames
        self._fd = os.open(last.path, os.O_WRONLY | os.O_APPEND)

    def _load_positions(self, consumers: list[str]) -> None:
        low = self._segments[0].first if self._segments else self._next_seq
        for consumer in consumers:
            path = self._directory / f"{consumer}{_ACK_SUFFIX}"
            if path.exists():
                self._positions[consumer] = _parse_position(path)
            else:
                self._store_position(consumer, SpoolPosition(sequence=low))
            held = _parse_hold(self._directory / f"{consumer}{_HOLD_SUFFIX}")
            if held is not None:
                self._held[consumer] = held
        furthest = max(position.sequence for position in self._positions.values())
        if furthest > self._next_seq:
            # Acknowledged events vanished (power loss with fsync off): never reuse their
            # numbers, or a consumer would skip new events as already handled.
            self._next_seq = furthest
            self._roll()

    def _frame(self, event: Event) -> bytes:
        payload = _encoder.encode(event)
        if len(payload) > codec.MAX_RECORD_BYTES:
            self._counts["oversized"] += 1
            process = Process(entity_id=event.process.entity_id, pid=event.process.pid)
            payload = _encoder.encode(
                gap_event(
                    host_id=event.host.id,
                    count=1,
                    timestamp=event.timestamp,
                    event_id=f"gap:oversized:{event.event.id}"[:256],
                    dataset="spool",
                    process=process,
                )
            )
        return _FRAME.pack(len(payload)) + payload

    def _writable_fd(self) -> int:
        self._check_open()
        if self._fd is None or not self._segments:
            return self._roll()
        return self._fd

    def _write(self, fd: int, buffer: bytearray, frames: int) -> None:
        if not frames:
            return
        active = self._segments[-1]
        view = memoryview(buffer)
        written = 0
        try:
            while written < len(view):
                written += os.write(fd, view[written:])
        except OSError:
            os.ftruncate(fd, active.size)  # no torn frame left behind for later appends
            raise
        active.size += len(buffer)
        self._next_seq += frames
        self._counts["appended"] += frames

    def _roll(self) -> int:
        """Close the active segment and start a new one at the next sequence number."""
        if self._fd is not None:
            if self._fsync:
                os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = None
        path = self._directory / f"{self._next_seq:020d}.seg"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        header = _SEGMENT_HEADER.pack(SEGMENT_MAGIC, SPOOL_FORMAT_VERSION, self._next_seq)
        os.write(fd, header + _STREAM_HEADER)
        if self._fsync:
            os.fdatasync(fd)
            _fsync_directory(self._directory)
        self._segments.append(_Segment(first=self._next_seq, path=path, size=HEADER_BYTES))
        self._fd = fd
        return fd

    def _enforce_limit(self) -> None:
        total = sum(segment.size for segment in self._segments)
        while total > self._max_bytes and len(self._segments) > 1:
            oldest = self._segments.pop(0)
            unacknowledged = self._segments[0].first - max(oldest.first, self._min_position())
            self._counts["evicted"] += max(0, unacknowledged)
            total -= oldest.size
            oldest.path.unlink(missing_ok=True)

    def _delete_acknowledged(self) -> None:
        done = self._min_position()
        while len(self._segments) > 1 and self._segments[1].first <= done:
            self._segments.pop(0).path.unlink(missing_ok=True)

    def _position_of(self, consumer: str) -> SpoolPosition:
        try:
            return self._positions[consumer]
        except KeyError:
            raise ConfigError(
                f"{consumer!r} is not a consumer of this spool", location=str(self._directory)
            ) from None

    def _held_of(self, consumer: str) -> int | None:
        """The consumer's hold, unless acknowledged (a hold file is never deleted: one at
        or before the position is over)."""
        held = self._held.get(consumer)
        return held if held is not None and held > self._position_of(consumer).sequence else None

    def _min_position(self) -> int:
        return min(position.sequence for position in self._positions.values())

    def _store_position(self, consumer: str, position: SpoolPosition) -> None:
        """Replace the consumer's position file atomically: temp file, fsync, rename."""
        path = self._directory / f"{consumer}{_ACK_SUFFIX}"
        temporary = path.with_name(path.name + ".tmp")
        record = _PositionFile(
            format=SPOOL_FORMAT_VERSION,
            sequence=position.sequence,
            segment=position.segment,
            offset=position.offset,
        )
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, msgspec.json.encode(record))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        if self._fsync:
            _fsync_directory(self._directory)
        self._positions[consumer] = position

    def _read_from(
        self, consumer: str, start: SpoolPosition, max_events: int, limit: int
    ) -> SpoolBatch:
        builder = _BatchBuilder(consumer=consumer, fallback=self._last_event)
        seq = start.sequence
        low = self._segments[0].first if self._segments else self._next_seq
        if seq < low:
            builder.lose(seq, low - seq)
            seq = low
        index = max(0, bisect.bisect_right([s.first for s in self._segments], seq) - 1)
        hint: SpoolPosition | None = start
        position = start if seq == start.sequence else SpoolPosition(sequence=seq)
        while builder.delivered < max_events and seq < limit:
            offset = None
            if hint is not None and hint.sequence == seq:
                offset = self._hinted_offset(index, hint)
            seq, position = self._read_segment(
                index, seq=seq, offset=offset, builder=builder, max_events=max_events, limit=limit
            )
            hint = None
            if seq >= self._end_of(index):
                index += 1
        return SpoolBatch(events=builder.finish(), position=position, lost=builder.lost)

    def _read_segment(  # noqa: PLR0913 (where to start, where to stop, where to put it)
        self,
        index: int,
        *,
        seq: int,
        offset: int | None,
        builder: _BatchBuilder,
        max_events: int,
        limit: int,
    ) -> tuple[int, SpoolPosition]:
        """Read segment ``index`` from event ``seq`` up to sequence ``limit``; returns the
        next sequence and position."""
        segment = self._segments[index]
        end = min(self._end_of(index), limit)
        if not segment.readable:
            return self._lose_corrupt(builder, seq, end), SpoolPosition(sequence=end)
        with segment.path.open("rb") as file:
            reader = _FrameReader(file, offset=offset or HEADER_BYTES, end=segment.size)
            if offset is None and not reader.skip(seq - segment.first):
                return self._lose_corrupt(builder, seq, end), SpoolPosition(sequence=end)
            while builder.delivered < max_events and seq < end:
                payloads = reader.take(min(max_events - builder.delivered, end - seq))
                if not payloads:
                    return self._lose_corrupt(builder, seq, end), SpoolPosition(sequence=end)
                for payload in payloads:
                    try:
                        event = _decoder.decode(payload)
                    except msgspec.DecodeError:
                        self._lose_corrupt(builder, seq, seq + 1)
                    else:
                        builder.add(event)
                    seq += 1
        return seq, SpoolPosition(sequence=seq, segment=segment.first, offset=reader.offset)

    def _hinted_offset(self, index: int, hint: SpoolPosition) -> int | None:
        segment = self._segments[index]
        if hint.sequence == segment.first:
            return HEADER_BYTES
        if hint.segment == segment.first and HEADER_BYTES <= hint.offset <= segment.size:
            return hint.offset
        return None

    def _lose_corrupt(self, builder: _BatchBuilder, seq: int, end: int) -> int:
        """Report events ``seq`` .. ``end`` - 1 as lost; count each unreadable one once."""
        builder.lose(seq, end - seq)
        self._counts["corrupt"] += max(0, end - max(seq, self._corrupt_mark))
        self._corrupt_mark = max(self._corrupt_mark, end)
        return end

    def _end_of(self, index: int) -> int:
        if index + 1 < len(self._segments):
            return self._segments[index + 1].first
        return self._next_seq

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise StorageError("spool is closed", location=str(self._directory))


def _check_settings(*, max_bytes: int, segment_bytes: int, consumers: Sequence[str]) -> None:
    if segment_bytes <= HEADER_BYTES:
        raise ConfigError(f"segment_bytes must exceed {HEADER_BYTES}", location="segment_bytes")
    if max_bytes < segment_bytes:
        raise ConfigError("max_bytes must be at least segment_bytes", location="max_bytes")
    if not consumers:
        raise ConfigError("a spool needs at least one consumer", location="consumers")
    for name in consumers:
        if not _CONSUMER_NAME.match(name):
            raise ConfigError(f"bad consumer name {name!r}", location="consumers")


def _header_is_valid(segment: _Segment) -> bool:
    """Whether the segment's header is complete and ours; raises for a newer format."""
    with segment.path.open("rb") as file:
        header = file.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        return False
    magic, version, first = _SEGMENT_HEADER.unpack_from(header)
    if magic != SEGMENT_MAGIC:
        return False
    if version != SPOOL_FORMAT_VERSION:
        raise StorageError(
            f"spool format version {version} is not supported (this build reads "
            f"{SPOOL_FORMAT_VERSION})",
            location=str(segment.path),
        )
    return first == segment.first and header[_SEGMENT_HEADER.size :] == _STREAM_HEADER


def _parse_position(path: Path) -> SpoolPosition:
    try:
        record = msgspec.json.decode(path.read_bytes(), type=_PositionFile)
    except msgspec.DecodeError as exc:
        raise StorageError(f"unreadable consumer position: {exc}", location=str(path)) from None
    if record.format != SPOOL_FORMAT_VERSION:
        raise StorageError(
            f"consumer position format {record.format} is not supported", location=str(path)
        )
    if record.sequence < 0:
        raise StorageError("negative consumer position", location=str(path))
    return SpoolPosition(sequence=record.sequence, segment=record.segment, offset=record.offset)


def _parse_hold(path: Path) -> int | None:
    """The end of the batch in flight recorded in ``path``; None without one, and (logged)
    when it cannot be read."""
    try:
        record = msgspec.json.decode(path.read_bytes(), type=_HoldFile)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as exc:
        log.warning("%s: unreadable hold, reads are not bounded by it: %s", path, exc)
        return None
    if record.format != SPOOL_FORMAT_VERSION or record.held < 0:
        log.warning("%s: hold of format %s at %s ignored", path, record.format, record.held)
        return None
    return record.held


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
