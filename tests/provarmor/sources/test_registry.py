"""Every registered importer, against the same hostile inputs: truncated gzip, gzip bombs,
junk. Each must keep what comes before a cut, stop within seconds, and say why, naming
the file."""

import gzip
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.registry import IMPORTERS

DATA = Path(__file__).resolve().parents[2] / "data"
SAMPLES = {
    "auditd": DATA / "auditd" / "attack_chain.log",
    "ndjson": DATA / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz",
    "cdm": DATA / "cdm" / "theia_head120.cdm.json",
    "sysdig": DATA / "sysdig" / "session.sysdig.jsonl",
    "journal": DATA / "hostlogs" / "journal.json",
    "syslog": DATA / "hostlogs" / "auth.log",
}
BOMB_BYTES = 4_700_000
"""The size of the gzip bomb the probe used (a newline-only one kept auditd busy > 90 s)."""


def test_every_format_of_the_cli_has_an_importer():
    assert {"ndjson", "auditd", "cdm", "sysdig", "journal", "syslog"} <= set(IMPORTERS)


def _plain(name: str) -> bytes:
    data = SAMPLES[name].read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _import(fmt: str, path: Path) -> tuple[list, IngestReport]:
    report = IngestReport(source=str(path))
    return list(IMPORTERS[fmt](path, report=report, host=HostContext(id="vm1"))), report


def _bomb(path: Path, line: bytes) -> Path:
    """Identical gzip members of ``line`` repeated, BOMB_BYTES in all (~4.7 GB inflated)."""
    member = gzip.compress(line * (64 * 1024 * 1024 // len(line)), compresslevel=9)
    path.write_bytes(member * (BOMB_BYTES // len(member) + 1))
    return path


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@settings(max_examples=15, deadline=None)
@given(cut=st.floats(min_value=0.05, max_value=0.95))
def test_truncated_gzip_keeps_what_a_stream_decompressor_yields(fmt, cut, tmp_path_factory):
    """Whatever the cut, a truncated .gz gives the events of the bytes `zcat` recovers, and
    one error naming the file."""
    folder = tmp_path_factory.mktemp(fmt)
    compressed = gzip.compress(_plain(fmt))
    cut_gz = folder / f"cut.{fmt}.gz"
    cut_gz.write_bytes(compressed[: int(len(compressed) * cut)])
    recovered = folder / f"cut.{fmt}"
    recovered.write_bytes(zlib.decompressobj(wbits=31).decompress(cut_gz.read_bytes()))

    from_gzip, report = _import(fmt, cut_gz)
    from_plain, _ = _import(fmt, recovered)

    gzip_ids = [e.event.id for e in from_gzip]
    plain_ids = [e.event.id for e in from_plain]
    if fmt == "syslog":
        # a syslog line cut after its header is still a (shorter) syslog line: the plain
        # copy may hold that one more event, which the gzip reader never sees whole
        assert plain_ids[: len(gzip_ids)] == gzip_ids and len(plain_ids) - len(gzip_ids) <= 1
    else:
        assert gzip_ids == plain_ids
    assert report.stopped.startswith(f"{cut_gz}:")
    assert "ended before the end-of-stream marker" in report.stopped


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@pytest.mark.parametrize("line", [b"\n", b"x\n"], ids=["newlines", "junk"])
def test_gzip_bomb_is_refused_within_seconds_naming_the_file(fmt, line, tmp_path):
    path = _bomb(tmp_path / f"bomb.{fmt}.gz", line)
    started = time.monotonic()
    events, report = _import(fmt, path)
    elapsed = time.monotonic() - started

    assert events == []
    assert elapsed < 30, f"{fmt} spent {elapsed:.0f} s on a {BOMB_BYTES:,}-byte bomb"
    assert report.stopped.startswith(f"{path}:")
    assert "decompression bomb" in report.stopped or "gave up" in report.stopped


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_junk_is_given_up_on_but_good_data_with_some_junk_is_read(fmt, tmp_path):
    junk = tmp_path / f"junk.{fmt}"
    junk.write_bytes(b"not a record\n" * 400_000)
    events, report = _import(fmt, junk)
    assert events == []
    assert report.stopped.startswith(f"{junk}:")
    assert "gave up after" in report.stopped
    assert report.rejected < 400_000

    mixed = tmp_path / f"mixed.{fmt}"
    mixed.write_bytes(b"not a record\n" * 1000 + _plain(fmt))
    events, report = _import(fmt, mixed)
    assert events
    assert report.stopped == ""


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_an_over_long_line_is_one_reject_and_the_input_is_read_on(fmt, tmp_path):
    lines = _plain(fmt).split(b"\n")
    middle = len(lines) // 2
    clean = tmp_path / f"clean.{fmt}"
    clean.write_bytes(b"\n".join(lines))
    long = tmp_path / f"long.{fmt}"
    long.write_bytes(b"\n".join([*lines[:middle], b"x" * (5 << 20), *lines[middle:]]))

    expected, clean_report = _import(fmt, clean)
    events, report = _import(fmt, long)

    assert [e.event.id for e in events] == [e.event.id for e in expected]
    assert report.rejected == clean_report.rejected + 1
    assert report.stopped == ""
