import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.actions import Action
from provarmor.model.codec import encode_ndjson
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson
from provarmor.testing.factories import make_event


def test_reads_plain_and_gzip_keeping_good_lines(tmp_path):
    good = [make_event(Action.WRITE, path=f"/f{i}", ts=i) for i in range(5)]
    body = encode_ndjson(good[:2]) + b"{truncated\n\x00\x01binary\n" + encode_ndjson(good[2:])
    for name, data in (("a.ndjson", body), ("b.ndjson.gz", gzip.compress(body))):
        path = tmp_path / name
        path.write_bytes(data)
        report = IngestReport(source=str(path))
        events = list(read_ndjson(path, report=report, host=HostContext()))
        assert events == good
        assert (report.records, report.events, report.rejected) == (7, 5, 2)
        assert report.errors[0].startswith(f"{path}:3:")
        assert report.errors[1].startswith(f"{path}:4:")


def test_truncated_gzip_keeps_the_events_before_the_cut(tmp_path):
    good = [make_event(Action.WRITE, path=f"/f{i}", ts=i) for i in range(3000)]
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(gzip.compress(encode_ndjson(good))[:-200])
    report = IngestReport(source=str(path))
    events = list(read_ndjson(path, report=report, host=HostContext()))
    assert events == good[: len(events)]
    assert len(events) > 2000
    assert report.rejected >= 1
    assert "unreadable data" in report.errors[0]


def test_last_line_without_newline_and_blank_lines(tmp_path):
    good = [make_event(Action.READ, path="/a", ts=1), make_event(Action.READ, path="/b", ts=2)]
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"\n\n" + encode_ndjson(good).rstrip(b"\n"))
    report = IngestReport(source=str(path))
    assert list(read_ndjson(path, report=report, host=HostContext())) == good
    assert report.rejected == 0


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_garbage_files_never_raise(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("g") / "g.ndjson"
    path.write_bytes(blob)
    report = IngestReport(source=str(path))
    events = list(read_ndjson(path, report=report, host=HostContext()))
    assert report.events == len(events)
    assert report.records == report.events + report.rejected


@pytest.mark.parametrize("megabytes", [5, 9])
def test_line_over_the_record_limit_is_rejected_and_its_neighbours_kept(tmp_path, megabytes):
    good = [make_event(Action.WRITE, path=f"/f{i}", ts=i) for i in range(4)]
    huge = make_event(Action.EXEC, args=("x" * (megabytes << 20),), ts=9)  # valid, too big
    path = tmp_path / "huge.ndjson"
    path.write_bytes(encode_ndjson(good[:2]) + encode_ndjson([huge]) + encode_ndjson(good[2:]))
    report = IngestReport(source=str(path))
    events = list(read_ndjson(path, report=report, host=HostContext()))
    assert events == good
    assert (report.records, report.events, report.rejected) == (5, 4, 1)
    assert report.errors[0].startswith(f"{path}:3: ")
    assert "4194304" in report.errors[0]
