import gzip

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
