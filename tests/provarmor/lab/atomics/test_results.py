import msgspec
import pytest

from provarmor.lab.atomics.results import (
    AtomicRecord,
    AtomicsReport,
    PhaseRecord,
    parse_results,
    technique_ids,
)
from provarmor.model.errors import ParseError


def _report(**changes):
    record = AtomicRecord(
        id="T1059.004-5",
        guid="8cd1947b-4a54-41fb-b5ea-07d0ace04f81",
        name="New script file in the tmp directory",
        technique="T1059.004",
        technique_v18="T1059.004",
        technique_name="Command and Scripting Interpreter: Bash",
        executor="sh",
        status="ran",
        started_ns=10,
        ended_ns=20,
        root_pid=42,
        root_start_ns=9,
        exit_code=0,
        phases=(
            PhaseRecord(
                phase="command", pid=42, start_ns=9, started_ns=10, ended_ns=19, exit_code=0
            ),
        ),
    )
    fields = dict(
        atomics="/a",
        files=1,
        tests=1,
        linux_tests=1,
        considered=1,
        selected=1,
        ran=1,
        failed=0,
        skipped=0,
        started_ns=1,
        ended_ns=30,
        duration_s=0.1,
        results=(record,),
    )
    fields.update(changes)
    return AtomicsReport(**fields)


def test_renumbered_techniques_carry_their_v18_id():
    assert technique_ids("T1685") == ("T1685", "T1562.001")
    assert technique_ids("T1690") == ("T1690", "T1562.003")
    assert technique_ids("T1059.004") == ("T1059.004", "T1059.004")
    assert technique_ids("T9999.999") == ("T9999.999", "")


def test_results_round_trip():
    report = _report()
    assert parse_results(msgspec.json.encode(report)) == report


def test_bad_results_raise_parse_error():
    with pytest.raises(ParseError, match="format_version"):
        parse_results(msgspec.json.encode(_report(format_version=9)))
    with pytest.raises(ParseError):
        parse_results(b'{"format_version": 1}')
    with pytest.raises(ParseError):
        parse_results(b"not json")


def test_summary_lines_give_the_totals():
    lines = _report(skipped=2, skipped_by_reason={"unsafe": 2}).summary_lines()
    assert lines[0].startswith("1 Linux tests in 1 files (0 parse errors)")
    assert "ran 1, failed 0, skipped 2" in lines[1] and lines[2] == "  skipped unsafe: 2"
