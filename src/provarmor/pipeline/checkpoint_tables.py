"""The tables of an analysis that grow with the host's history, as a checkpoint carries
them: the graph builder's (nodes held, open edges) and each anomaly detector's profile table.

Each such table hands out its entries as typed records (``take_tables``: all of them, or
those changed since the last call) and takes them back (``put_tables``). This process keeps,
per table, the chain of compressed chunks (zlib(msgpack)) it wrote so far: a full one, then
one of the changes per checkpoint, so a checkpoint encodes only what changed and carries the
earlier chunks as they were. When the chunks after the full one outgrow it (and
``COMPACT_MIN_BYTES``), or number ``MAX_CHUNKS``, the next checkpoint starts a new chain with
a full chunk; a failure while taking one forgets the chain (the next starts anew).

In the checkpoint's pickle such a table is a reference by number to its chunks
(:meth:`Writing.reduce`); loading rebuilds it from them (:class:`Restored`) before the rest of
the pickle refers to it. A profile that other state holds besides its table (a detector's
profiles waiting to be scored) is a reference to the table's entry, so it is one object again
after loading.
"""

from __future__ import annotations

import pickle
import threading
import weakref
import zlib
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import msgspec

from provarmor.detection.anomaly.profile import Profile, ProfilesChunk, ProfileTable
from provarmor.graph.builder import GraphBuilder
from provarmor.graph.builder_tables import TablesChunk
from provarmor.model.errors import ParseError

COMPACT_MIN_BYTES = 64 * 1024
"""A chain is compacted only once its chunks after the full one pass this size."""
MAX_CHUNKS = 256

Chained = GraphBuilder | ProfileTable
KINDS: dict[str, type[GraphBuilder] | type[ProfileTable]] = {
    "graph": GraphBuilder,
    "profiles": ProfileTable,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}
_DECODE: dict[str, Callable[[bytes], TablesChunk | ProfilesChunk]] = {
    "graph": msgspec.msgpack.Decoder(TablesChunk).decode,
    "profiles": msgspec.msgpack.Decoder(ProfilesChunk).decode,
}
_encode = msgspec.msgpack.Encoder().encode


def _apart(cls: type[Chained]) -> tuple[str, ...]:
    """The attributes the pickle leaves out (the tables, their change trackers, caches):
    each is an empty dict in a restored table until its chunks fill it."""
    return (*cls.TABLES, *cls.TRACKERS, *cls.CACHES)


@dataclass(slots=True)
class _Chain:
    """The chunks of one table so far (the first a full one)."""

    chunks: list[bytes]
    since: int = 0
    """Bytes of the chunks after the first."""

    @property
    def due(self) -> bool:
        """Whether the next checkpoint starts a new chain."""
        return len(self.chunks) >= MAX_CHUNKS or self.since > max(
            len(self.chunks[0]), COMPACT_MIN_BYTES
        )


_CHAINS: weakref.WeakKeyDictionary[Chained, _Chain] = weakref.WeakKeyDictionary()
_CHAINS_LOCK = threading.Lock()


def take_chunks(table: Chained) -> list[bytes]:
    """The table's chain with a chunk of what changed since the last one (or a new chain)."""
    with _CHAINS_LOCK:
        chain = _CHAINS.pop(table, None)
    full = chain is None or chain.due
    chunk = zlib.compress(_encode(table.take_tables(full=full)), 1)
    if chain is None or full:
        chain = _Chain([chunk])
    else:
        chain.chunks.append(chunk)
        chain.since += len(chunk)
    with _CHAINS_LOCK:
        _CHAINS[table] = chain
    return list(chain.chunks)


@dataclass(slots=True)
class Writing:
    """The chained tables of one checkpoint being written, in the order the pickle met
    them, with their chunks."""

    tables: list[Chained] = field(default_factory=list)
    chunks: list[tuple[str, list[bytes]]] = field(default_factory=list)
    _copied: set[int] = field(default_factory=set)

    def reduce(self, table: Chained) -> tuple[Callable[..., object], tuple[int], dict[str, Any]]:
        """A table in the pickle: its number (its chunks are written beside the pickle) and
        the rest of its state."""
        if (
            isinstance(table, ProfileTable)
            and self._copied
            and any(id(profile) in self._copied for profile in table.profiles.values())
        ):
            raise pickle.PicklingError("a profile was written before its table")
        apart = _apart(type(table))
        try:
            chunks = take_chunks(table)
        except (msgspec.EncodeError, ValueError) as exc:  # the checkpoint fails, counted
            raise pickle.PicklingError(f"a {type(table).__name__}: {exc}") from None
        self.chunks.append((_KIND_OF[type(table)], chunks))
        self.tables.append(table)
        state = {name: value for name, value in vars(table).items() if name not in apart}
        return (Restored, (len(self.tables) - 1,), state)

    def reduce_profile(self, profile: Profile) -> object:
        """A profile: a reference to its table's entry when its table is written already,
        else the profile itself."""
        for number, table in enumerate(self.tables):
            if isinstance(table, ProfileTable) and table.profiles.get(profile.entity_id) is profile:
                return (ProfileReference, (number, profile.entity_id))
        self._copied.add(id(profile))
        return profile.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


@dataclass(slots=True)
class Reading:
    """The chained tables of one checkpoint being loaded."""

    chunks: list[tuple[str, list[bytes]]]
    location: str
    tables: dict[int, Chained] = field(default_factory=dict)

    def check_all_used(self) -> None:
        if len(self.tables) != len(self.chunks):
            raise ParseError(
                f"its header names {len(self.chunks)} tables, its state {len(self.tables)}",
                location=self.location,
            )


READING: ContextVar[Reading] = ContextVar("checkpoint_tables")


def _restore(number: int) -> Chained:
    reading = READING.get()
    if not 0 <= number < len(reading.chunks) or number in reading.tables:
        raise ParseError(f"refers to table {number} wrongly", location=reading.location)
    kind, chunks = reading.chunks[number]
    cls = KINDS.get(kind)
    if cls is None or not chunks:
        raise ParseError(f"table {number} ({kind!r}) has no chunks", location=reading.location)
    table = cls.__new__(cls)
    for name in _apart(cls):
        setattr(table, name, {})
    for index, chunk in enumerate(chunks, start=1):
        try:
            table.put_tables(_DECODE[kind](zlib.decompress(chunk)))  # type: ignore[arg-type]
        except (zlib.error, msgspec.DecodeError) as exc:
            raise ParseError(
                f"damaged {kind} table (chunk {index}): {exc}", location=reading.location
            ) from None
    with _CHAINS_LOCK:
        _CHAINS[table] = _Chain(list(chunks), since=sum(len(c) for c in chunks[1:]))
    reading.tables[number] = table
    return table


class Restored:
    """How a checkpoint rebuilds a chained table: from its chunks, by number."""

    def __new__(cls, number: int) -> Chained:  # type: ignore[misc]
        return _restore(number)


class ProfileReference:
    """How a checkpoint refers to a profile of a profile table it holds."""

    def __new__(cls, number: int, entity_id: str) -> Profile:  # type: ignore[misc]
        reading = READING.get()
        table = reading.tables.get(number)
        found = table.profiles.get(entity_id) if isinstance(table, ProfileTable) else None
        if found is None:
            raise ParseError(
                f"refers to profile {entity_id!r} of table {number}, which it lacks",
                location=reading.location,
            )
        return found
