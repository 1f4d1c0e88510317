"""Checkpoints of a running analysis: restored, it goes on exactly as the one that wrote it;
anything it cannot restore exactly is refused with a message naming the checkpoint."""

import os
import pickle
import re
import zlib
from pathlib import Path

import msgspec
import pytest

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.evaluation.dataset import load_dataset
from provarmor.graph.store import MemoryGraphStore
from provarmor.model.errors import ParseError
from provarmor.pipeline.analysis import Analysis, IncidentUpdate, batches
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis, compile_rules
from provarmor.pipeline.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointHeader,
    Shared,
    build_digest,
    dump_analysis,
    load_analysis,
    read_header,
)

DATA = Path(__file__).resolve().parents[2] / "data"
FIXTURE = DATA / "pipeline" / "checkpoint-v1.bin"
"""A checkpoint of format 1: the nodlink capture's analysis after its first 20 batches of
100 events (rules + model-v2), written by the build of the commit that added it."""
FIXTURE_V2 = DATA / "pipeline" / "checkpoint-v2.bin"
"""The same in format 2 (:func:`write_fixture`): the builder's and the anomaly detector's
tables as a full chunk after 10 batches and a chunk of what changed in the next 10."""


@pytest.fixture(scope="module")
def events():
    return list(load_dataset(DATA / "lab" / "nodlink-ubuntu-seed1").events())


@pytest.fixture(scope="module")
def parts():
    return compile_rules([bundled_rules()]), load_bundle(DATA / "anomaly" / "model-v2.bundle")


def _analysis(parts, store) -> tuple[Analysis, Shared]:
    ruleset, model = parts
    plan = AnalysisPlan(ruleset=ruleset, model=model, replaceable_suppressions=True)
    analysis = build_analysis(plan, store=store)
    return analysis, Shared(store=store, ruleset=ruleset, model=model)


def _found(findings) -> list[tuple]:
    return [
        ("incident", f.incident.id, f.incident.version, msgspec.json.encode(f.incident))
        if isinstance(f, IncidentUpdate)
        else ("alert", f.id, f.score)
        for f in findings
    ]


def test_a_restored_analysis_goes_on_exactly(parts, events):
    cut = batches(events, size=100)
    chunks = list(cut)
    reference, _ = _analysis(parts, MemoryGraphStore())
    expected = [_found(reference.feed(chunk)) for chunk in chunks]

    store = MemoryGraphStore()
    first, shared = _analysis(parts, store)
    found = [_found(first.feed(chunk)) for chunk in chunks[:12]]
    data = dump_analysis(first, shared, kit="kit-1", extra={"tag": "5f0c9a1e"})
    # the loading side's own parts: another analysis over the same graph
    _, loading = _analysis(parts, store)
    restored, extra = load_analysis(data, loading, kit="kit-1", location="test")
    assert restored is not first and extra == {"tag": "5f0c9a1e"}
    found += [_found(restored.feed(chunk)) for chunk in chunks[12:]]
    assert found == expected
    assert any(kind == "incident" for batch in expected[12:] for kind, *_ in batch), (
        "the incident grows after the checkpoint"
    )


def test_the_shared_parts_are_not_in_the_checkpoint(parts, events):
    analysis, shared = _analysis(parts, MemoryGraphStore())
    analysis.feed(events[:200])
    data = dump_analysis(analysis, shared, kit="k")
    state = zlib.decompress(data.partition(b"\n")[2])
    rules = shared.ruleset.rules
    assert rules[0].info.title.encode() not in state
    assert b"MemoryGraphStore" not in state and b"AnomalyModel" not in state


def _checkpoint(state: bytes, *chunks: bytes, **header) -> bytes:
    packed = zlib.compress(state)
    fields = {
        "format": CHECKPOINT_FORMAT,
        "build": build_digest(),
        "kit": "k",
        "state_bytes": len(state),
        "parts": [len(packed), *map(len, chunks)],
        "tables": [["graph", len(chunks)]] if chunks else [],
    } | header
    return msgspec.json.encode(fields) + b"\n" + packed + b"".join(chunks)


class _RunsACommand:
    def __reduce__(self):
        return (os.system, ("touch /tmp/provarmor-checkpoint-ran",))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unreadable checkpoint header"),
        (b'{"format": 1}\n', "unreadable checkpoint header"),
        (_checkpoint(b"", format=1), "checkpoint format 1 (this build reads 2)"),
        (
            _checkpoint(b"x", parts=[3, 4]),
            "damaged checkpoint: its body is 9 bytes, its header's parts [3, 4]",
        ),
        (_checkpoint(b"", build="0" * 32), "written by another build"),
        (_checkpoint(b"", kit="other"), "other rules, model or settings"),
        (_checkpoint(b"x", state_bytes=5), "header says 5"),
        (_checkpoint(b"\x80\x05garbage"), "damaged checkpoint"),
        (_checkpoint(pickle.dumps([1, 2])), "holds a list, not an analysis"),
        (_checkpoint(pickle.dumps(_RunsACommand())), "names posix.system"),
        (_checkpoint(pickle.dumps(eval)), "names builtins.eval"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_what_cannot_be_restored_is_refused_naming_the_checkpoint(parts, data, message):
    _, shared = _analysis(parts, MemoryGraphStore())
    with pytest.raises(ParseError, match=re.escape(message)) as refused:
        load_analysis(data, shared, kit="k", location="checkpoint of host h1")
    assert str(refused.value).startswith("checkpoint of host h1: ")
    assert not Path("/tmp/provarmor-checkpoint-ran").exists()


def _without_last_table(data: bytes, *, chunks: bool) -> bytes:
    """``data`` without its last table's chunks (``chunks``: keep them, drop it from the
    header only), the header saying so."""
    line, _, body = data.partition(b"\n")
    header = msgspec.json.decode(line, type=CheckpointHeader)
    *tables, (kind, count) = header.tables
    parts = header.parts[:-count] if not chunks else header.parts
    tables = [*tables, (kind, 0)] if not chunks else tables
    trimmed = msgspec.structs.replace(header, parts=parts, tables=tables)
    return msgspec.json.encode(trimmed) + b"\n" + body[: sum(parts)]


def test_missing_or_damaged_tables_are_refused(parts, events):
    analysis, shared = _analysis(parts, MemoryGraphStore())
    analysis.feed(events[:300])
    data = dump_analysis(analysis, shared, kit="k")
    header = read_header(data, location="c")
    assert [kind for kind, _ in header.tables] == ["profiles", "graph"]
    with pytest.raises(ParseError, match=re.escape("table 1 ('graph') has no chunks")):
        load_analysis(_without_last_table(data, chunks=False), shared, kit="k", location="c")
    with pytest.raises(ParseError, match="damaged checkpoint: its body is"):
        load_analysis(_without_last_table(data, chunks=True), shared, kit="k", location="c")
    damaged = data[:-20] + bytes(20)
    with pytest.raises(ParseError, match=re.escape("damaged graph table (chunk 1)")):
        load_analysis(damaged, shared, kit="k", location="c")


def test_a_reference_to_a_part_the_loader_lacks_is_refused(parts, events):
    analysis, shared = _analysis(parts, MemoryGraphStore())
    analysis.feed(events[:300])
    data = dump_analysis(analysis, shared, kit="k")
    ruleset, _model = parts
    without_model = AnalysisPlan(ruleset=ruleset, replaceable_suppressions=True)
    store = MemoryGraphStore()
    build_analysis(without_model, store=store)
    with pytest.raises(ParseError, match="refers to model"):
        load_analysis(data, Shared(store=store, ruleset=ruleset), kit="k", location="c")


def test_a_checkpoint_of_format_1_reads_and_is_refused_for_its_format(parts):
    data = FIXTURE.read_bytes()
    header = read_header(data, location=str(FIXTURE))
    assert isinstance(header, CheckpointHeader)
    assert (header.format, header.kit, header.extra) == (1, "fixture", {"tag": "5f0c9a1e"})
    assert header.state_bytes == len(zlib.decompress(data.partition(b"\n")[2]))
    _, shared = _analysis(parts, MemoryGraphStore())
    with pytest.raises(ParseError, match=re.escape("checkpoint format 1 (this build reads 2)")):
        load_analysis(data, shared, kit="fixture", location=str(FIXTURE))


def test_a_checkpoint_of_format_2_reads_and_another_build_is_refused(parts):
    data = FIXTURE_V2.read_bytes()
    header = read_header(data, location=str(FIXTURE_V2))
    assert (header.format, header.kit, header.extra) == (2, "fixture", {"tag": "5f0c9a1e"})
    assert header.tables == [("profiles", 2), ("graph", 2)], "a full chunk, one of changes"
    assert sum(header.parts) == len(data.partition(b"\n")[2])
    _, shared = _analysis(parts, MemoryGraphStore())
    if header.build == build_digest():  # only on the commit that wrote it
        load_analysis(data, shared, kit="fixture", location=str(FIXTURE_V2))
        return
    with pytest.raises(ParseError, match="written by another build"):
        load_analysis(data, shared, kit="fixture", location=str(FIXTURE_V2))


def write_fixture() -> None:  # pragma: no cover  (run by hand to make the fixture)
    events = list(load_dataset(DATA / "lab" / "nodlink-ubuntu-seed1").events())
    parts = compile_rules([bundled_rules()]), load_bundle(DATA / "anomaly" / "model-v2.bundle")
    analysis, shared = _analysis(parts, MemoryGraphStore())
    for number, chunk in enumerate(list(batches(events, size=100))[:20]):
        analysis.feed(chunk)
        if number in (9, 19):  # a full chunk after 10 batches, the changes after 20
            data = dump_analysis(analysis, shared, kit="fixture", extra={"tag": "5f0c9a1e"})
    FIXTURE_V2.write_bytes(data)
