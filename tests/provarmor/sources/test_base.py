from provarmor.model.errors import ParseError
from provarmor.sources import base
from provarmor.sources.base import IngestReport


def test_report_keeps_a_bounded_number_of_messages_but_counts_all():
    report = IngestReport(source="x")
    for i in range(base.MAX_KEPT_ERRORS + 10):
        report.reject(ParseError("bad", location=f"x:{i}"))
    assert report.rejected == base.MAX_KEPT_ERRORS + 10
    assert len(report.errors) == base.MAX_KEPT_ERRORS


def test_merge_adds_counts():
    a, b = IngestReport(source="a"), IngestReport(source="b")
    b.events, b.records = 3, 4
    b.dropped_fields["is_warn"] = 4
    a.merge(b)
    assert (a.events, a.records, a.dropped_fields["is_warn"]) == (3, 4, 4)
