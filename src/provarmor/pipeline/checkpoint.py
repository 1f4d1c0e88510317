"""Checkpoints of a running :class:`~provarmor.pipeline.analysis.Analysis`: everything a host's
pipeline holds in memory between batches, so that a restored analysis goes on exactly as the
one that wrote it would have.

That state is spread over many objects: the graph builder (process table, open edges, the
host-log join, edge ids), the rules' correlation windows and counters, the lineage table of
the context detector, the suppression counts, the anomaly detector's per-process state and
the incident engine (open campaigns, incidents and their versions). A checkpoint is that
whole object graph, pickled, with the parts every analysis shares and that are not state
replaced by references (:class:`Shared`): the graph store, the compiled rules (each by its
key), the rule index (the loading rule set's own), the anomaly model and detectors the
caller keeps itself (learning mode's). On load the references are resolved against the
loading analysis's own parts. The analysis's read cache over the graph store is in the
checkpoint without its cached answers but with the graph writes it still holds back (a
host's analysis writes its graph behind: :mod:`provarmor.manager.ingest`). Graph records
(nodes, edges) are written as their field values in order, not with their field names.

The tables that grow with the host's history (the graph builder's nodes and open edges,
each anomaly detector's profiles: most of the state) are not in the pickle: each is a chain
of chunks of typed records (msgpack, compressed), a full one and then, checkpoint after
checkpoint, only the entries changed since the one before; this process keeps the chains, so
a checkpoint encodes only what changed (:mod:`provarmor.pipeline.checkpoint_tables`). Every
checkpoint is whole (it needs no other).

Layout (format 2): one JSON header line, then the compressed parts back to back: the
zlib-compressed pickle, then each chained table's chunks (zlib(msgpack))::

    {"format": 2, "build": "<digest of this build's sources>", "kit": "<caller's digest>",
     "state_bytes": N, "parts": [<pickle's compressed bytes>, <chunk's>, ...],
     "tables": [[<"graph" or "profiles">, <how many of the chunks>], ...]}\\n...

(the tables in the order the pickle meets them).

Format 1 (everything in the pickle) is refused like another build's checkpoint (the host is
rebuilt, counted).

A checkpoint is restored only by the build that wrote it (``build``: a digest of the
package's source files, since a pickle names classes and fields of one build) with the same
rules, model and settings (``kit``: the caller's digest of them). Anything else (another
format, another build or kit, a damaged body, a class this loader does not allow) raises
:class:`~provarmor.model.errors.ParseError` naming the checkpoint, and the caller rebuilds
the analysis instead. Loading resolves only classes of this package and a short list of
standard containers: a checkpoint is data the stores hold, never code to run.

Why a pickle, which the house style keeps out of stored formats: this state is some twenty
classes' internals (with objects shared between them), it lives only as long as one build
runs, and it has to be written after every batch; typed records per class (``to_state`` /
``from_state``) would give a format that survives upgrades, at the price of keeping each in
step with its class. Here an upgrade falls back to rebuilding from the graph, as before
checkpoints existed.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import pickle
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from provarmor.detection.anomaly.profile import Profile, ProfileTable
from provarmor.detection.engine import Detector
from provarmor.detection.sigma.index import RuleIndex
from provarmor.detection.sigma.ruleset import RuleSet
from provarmor.graph.builder import GraphBuilder
from provarmor.graph.records import Edge, Node
from provarmor.model.errors import ParseError
from provarmor.pipeline.analysis import Analysis
from provarmor.pipeline.checkpoint_tables import READING, Reading, Writing

CHECKPOINT_FORMAT = 2
_PROTOCOL = 5
_PACKAGE = Path(__file__).resolve().parents[1]


class CheckpointHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int
    build: str
    """Digest of the sources of the build that wrote it."""
    kit: str
    """The caller's digest of the rules, model and settings the analysis ran with."""
    state_bytes: int
    """Length of the uncompressed pickle."""
    extra: dict[str, Any] = {}
    """The caller's own fields (JSON)."""
    parts: list[int] = []
    """Compressed length of each part after the header: the pickle, then the chunks of the
    chained tables (format 2)."""
    tables: list[tuple[str, int]] = []
    """Each chained table's kind and how many of the chunks are its, in order (format 2)."""


@cache
def build_digest() -> str:
    """A digest of this build's Python sources (a pickle is only valid for the classes it was
    written with)."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shared:
    """What an analysis uses but does not own: never written into a checkpoint, taken from
    the loading side instead."""

    store: object
    ruleset: RuleSet
    model: object | None = None
    kept: Mapping[str, Detector] = field(default_factory=dict)

    def named(self) -> Iterator[tuple[Reference, object]]:
        """Every shared object with its reference."""
        yield ("store", ""), self.store
        yield ("ruleset", ""), self.ruleset
        for rule in self.ruleset.rules:
            yield ("rule", rule.info.key), rule
            yield ("info", rule.info.key), rule.info
        for spec in self.ruleset.correlations:
            yield ("correlation", spec.info.key), spec
            yield ("info", spec.info.key), spec.info
        if self.model is not None:
            yield ("model", ""), self.model
        for name, detector in self.kept.items():
            yield ("kept", name), detector

    def resolver(self) -> Callable[[Reference], object]:
        """Reference -> the loading side's object (:class:`KeyError` when it has none)."""
        objects = dict(self.named())

        def resolve(reference: Reference) -> object:
            if reference == _INDEX:  # the rule set's own, shared by its Sigma detectors
                return self.ruleset.index
            return objects[reference]

        return resolve


Reference = tuple[str, str]
"""``(kind, key)`` of a shared object: ``("rule", <rule key>)``, ``("store", "")`` ..."""
_INDEX: Reference = ("index", "")
_RESOLVE: ContextVar[Callable[[Reference], object]] = ContextVar("checkpoint_resolve")


def _shared(kind: str, key: str) -> object:
    """A shared object, on load (what a checkpoint holds instead of it)."""
    return _RESOLVE.get()((kind, key))


class _Record:
    """How a checkpoint rebuilds a graph record: the record's class and its field values in
    order (a record pickled by msgspec's own reduction carries every field name with it:
    the graph builder holds thousands, so that is most of a checkpoint's bytes and time)."""

    def __new__(cls, kind: type[Node | Edge], *values: Any) -> Node | Edge:  # type: ignore[misc]
        if kind is not Node and kind is not Edge:
            raise pickle.UnpicklingError(f"{kind!r} is not a graph record")
        return kind(**dict(zip(kind.__struct_fields__, values, strict=True)))


def _reduce_record(record: Node | Edge) -> tuple[Callable[..., object], tuple[Any, ...]]:
    return (_Record, (type(record), *msgspec.structs.astuple(record)))


def _pickler(file: io.BytesIO, shared: Shared, tables: Writing) -> pickle.Pickler:
    """A pickler that writes each shared object as a reference (by type, in C: a
    ``persistent_id`` would be a Python call for every object written) and each chained
    table as a reference to its chunks (``tables``)."""
    references = {id(obj): reference for reference, obj in shared.named()}

    def reduce_shared(obj: object) -> tuple[Callable[..., object], tuple[Any, ...]]:
        found = references.get(id(obj))
        if found is None:
            raise pickle.PicklingError(
                f"a {type(obj).__name__} that is not one of the analysis's shared parts"
            )
        return (_shared, found)

    def reduce_index(_index: object) -> tuple[Callable[..., object], tuple[Any, ...]]:
        return (_shared, _INDEX)

    table: dict[Any, Any] = dict(copyreg.dispatch_table)  # the standard reductions too
    for _reference, obj in shared.named():
        table[type(obj)] = reduce_shared
    table[RuleIndex] = reduce_index
    table[Node] = table[Edge] = _reduce_record
    table[GraphBuilder] = table[ProfileTable] = tables.reduce
    table[Profile] = tables.reduce_profile
    pickler = pickle.Pickler(file, protocol=_PROTOCOL)
    pickler.dispatch_table = table
    return pickler


_ALLOWED_OUTSIDE = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("collections", "deque"),
    ("collections", "defaultdict"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("msgspec._utils", "rebuild"),  # cls(**kwargs), cls a class this loader allows
    ("itertools", "count"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}
"""Classes and functions a checkpoint may name outside this package."""


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, location: str) -> None:
        super().__init__(file)
        self._location = location

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == (__name__, "_shared"):
            return _shared
        if module == "provarmor" or module.startswith("provarmor."):
            found = super().find_class(module, name)
            if isinstance(found, type):  # classes only, never a function to call
                return found
        elif (module, name) in _ALLOWED_OUTSIDE:
            return super().find_class(module, name)
        raise ParseError(
            f"names {module}.{name}, which a checkpoint may not", location=self._location
        )


def dump_analysis(
    analysis: Analysis, shared: Shared, *, kit: str, extra: dict[str, Any] | None = None
) -> bytes:
    """The checkpoint of ``analysis`` (between batches), with the caller's ``extra`` fields
    in its header."""
    buffer = io.BytesIO()
    tables = Writing()
    _pickler(buffer, shared, tables).dump(analysis)
    state = buffer.getvalue()
    packed = zlib.compress(state, 1)
    chunks = [chunk for _, table in tables.chunks for chunk in table]
    header = CheckpointHeader(
        format=CHECKPOINT_FORMAT,
        build=build_digest(),
        kit=kit,
        state_bytes=len(state),
        extra=extra or {},
        parts=[len(packed), *map(len, chunks)],
        tables=[(kind, len(table)) for kind, table in tables.chunks],
    )
    return b"".join((msgspec.json.encode(header), b"\n", packed, *chunks))


def read_header(data: bytes, *, location: str) -> CheckpointHeader:
    line, newline, _ = data.partition(b"\n")
    try:
        if not newline:
            raise msgspec.ValidationError("no header line")
        return msgspec.json.decode(line, type=CheckpointHeader)
    except msgspec.DecodeError as exc:
        raise ParseError(f"unreadable checkpoint header: {exc}", location=location) from None


def _parts(
    data: bytes, *, kit: str, location: str
) -> tuple[CheckpointHeader, bytes, list[tuple[str, list[bytes]]]]:
    """The header of a checkpoint this analysis may restore, its compressed pickle and each
    chained table's kind and compressed chunks."""
    header = read_header(data, location=location)
    if header.format != CHECKPOINT_FORMAT:
        raise ParseError(
            f"checkpoint format {header.format} (this build reads {CHECKPOINT_FORMAT})",
            location=location,
        )
    if header.build != build_digest():
        raise ParseError(
            f"written by another build of provarmor ({header.build}, this is {build_digest()})",
            location=location,
        )
    if header.kit != kit:
        raise ParseError(
            "written with other rules, model or settings than this analysis has",
            location=location,
        )
    body = data.partition(b"\n")[2]
    if (
        not header.parts
        or sum(header.parts) != len(body)
        or min(header.parts) <= 0
        or sum(count for _, count in header.tables) != len(header.parts) - 1
    ):
        raise ParseError(
            f"damaged checkpoint: its body is {len(body)} bytes, its header's parts "
            f"{header.parts} for tables {header.tables}",
            location=location,
        )
    parts, at = [], 0
    for size in header.parts:
        parts.append(body[at : at + size])
        at += size
    tables, first = [], 1
    for kind, count in header.tables:
        tables.append((kind, parts[first : first + count]))
        first += count
    return header, parts[0], tables


def load_analysis(
    data: bytes, shared: Shared, *, kit: str, location: str
) -> tuple[Analysis, dict[str, Any]]:
    """The analysis a checkpoint holds, over ``shared``, and the caller's extra fields
    (:class:`ParseError` when it cannot be restored exactly: see the module docstring)."""
    header, packed, tables = _parts(data, kit=kit, location=location)
    try:
        state = zlib.decompress(packed)
    except zlib.error as exc:
        raise ParseError(f"damaged checkpoint body: {exc}", location=location) from None
    if len(state) != header.state_bytes:
        raise ParseError(
            f"checkpoint body is {len(state)} bytes, its header says {header.state_bytes}",
            location=location,
        )
    resolve = shared.resolver()

    def resolve_named(reference: Reference) -> object:
        try:
            return resolve(reference)
        except KeyError:
            kind, key = reference
            raise ParseError(
                f"refers to {kind} {key!r}, which this analysis does not have", location=location
            ) from None

    token = _RESOLVE.set(resolve_named)
    reading = Reading(tables, location)
    reading_token = READING.set(reading)
    try:
        loaded = _Unpickler(io.BytesIO(state), location).load()
    except ParseError:
        raise
    except Exception as exc:  # a damaged pickle raises anything from its opcodes
        raise ParseError(f"damaged checkpoint: {exc!r}", location=location) from None
    finally:
        _RESOLVE.reset(token)
        READING.reset(reading_token)
    if not isinstance(loaded, Analysis):
        raise ParseError(f"holds a {type(loaded).__name__}, not an analysis", location=location)
    reading.check_all_used()
    return loaded, header.extra
