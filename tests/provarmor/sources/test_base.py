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


def test_an_input_is_overwhelmed_when_rejects_pass_the_allowance_and_outnumber_events():
    report = IngestReport(source="x")
    report.events = base.REJECT_ALLOWANCE + 5
    for i in range(base.REJECT_ALLOWANCE + 1):
        report.reject(ParseError("bad", location=f"x:{i}"))
    assert not report.overwhelmed  # more events than rejects
    report.events = 0
    assert report.overwhelmed
    report.give_up("x:9")
    assert report.stopped.startswith("x:9: gave up after 100,001 rejected records")


def test_stop_counts_the_record_keeps_the_first_reason_and_merges():
    report = IngestReport(source="a")
    report.stop(ParseError("truncated", location="a:3"))
    report.stop(ParseError("later", location="a:4"))
    assert (report.records, report.rejected, report.stopped) == (2, 2, "a:3: truncated")
    other = IngestReport(source="b")
    other.merge(report)
    assert other.stopped == "a:3: truncated"
