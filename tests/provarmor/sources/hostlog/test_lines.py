"""Syslog and journal line parsing, on lines of the real captures in tests/data/hostlogs."""

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.errors import ParseError
from provarmor.sources.hostlog.lines import parse_journal_line, parse_syslog_line

DATA = Path(__file__).resolve().parents[3] / "data" / "hostlogs"
WRITTEN = datetime(2026, 12, 6, 18, 10, tzinfo=UTC)
ACCEPTED_NS = 1796580236990863000
"""When sshd logged "Accepted password for hlvictim" in the recording (journal, µs)."""


def _line(name: str, needle: str) -> str:
    text = (DATA / name).read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if needle in line)


@pytest.mark.parametrize("name", ["auth.log", "auth-rfc5424.log", "auth-traditional.log"])
def test_every_syslog_shape_gives_program_pid_host_and_text(name):
    line = parse_syslog_line(
        _line(name, "Accepted password"), written=WRITTEN, location=f"{name}:1"
    )
    assert (line.program, line.pid, line.hostname) == ("sshd", 20456, "vm")
    assert line.message == "Accepted password for hlvictim from 10.99.15.1 port 45002 ssh2"
    if name == "auth-traditional.log":
        assert line.timestamp == ACCEPTED_NS // 10**9 * 10**9  # whole seconds, no year
    else:
        assert line.timestamp == ACCEPTED_NS


def test_rfc5424_keeps_priority_as_facility():
    line = parse_syslog_line(_line("auth-rfc5424.log", "REPLACE"), written=WRITTEN, location="x")
    assert line.facility == 9  # cron
    assert line.message == "(root) REPLACE (hlvictim)"


def test_rfc3164_december_lines_in_a_january_file_are_from_the_year_before():
    text = _line("auth-traditional.log", "Accepted password")
    line = parse_syslog_line(text, written=datetime(2027, 1, 2, tzinfo=UTC), location="x")
    assert datetime.fromtimestamp(line.timestamp / 1e9, tz=UTC).year == 2026


def test_journal_entry_gives_program_pid_boot_and_text():
    line = parse_journal_line(_line("journal.json", "Accepted password"), location="j:1")
    assert (line.program, line.pid, line.hostname) == ("sshd", 20456, "vm")
    assert line.timestamp == ACCEPTED_NS
    assert line.boot_id == "2e097ec19ef547cea90b3827993a1dce"
    assert line.facility == 4


def test_journal_message_given_as_bytes_is_decoded():
    entry = json.loads(_line("journal.json", "Accepted password"))
    entry["MESSAGE"] = list(b"caf\xc3\xa9 \xff")
    line = parse_journal_line(json.dumps(entry), location="j:1")
    assert line.message == "café \ufffd"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("hello world", "not a syslog line"),
        ("<999>1 2026-12-06T18:02:40Z vm sshd 1 - - x", "priority 999"),
        ("2026-13-06T18:02:40+00:00 vm sshd[1]: x", "bad timestamp"),
        ("<13>1 2026-12-06T18:02:40Z vm sshd 1 - [bad x", "structured data"),
    ],
)
def test_bad_syslog_lines_are_parse_errors_naming_the_line(text, why):
    with pytest.raises(ParseError, match=why) as error:
        parse_syslog_line(text, written=WRITTEN, location="auth.log:7")
    assert str(error.value).startswith("auth.log:7: ")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"MESSAGE": "x"}', "__REALTIME_TIMESTAMP"),
        ('{"__REALTIME_TIMESTAMP": "1796580236990863"}', "without MESSAGE"),
        ('{"__REALTIME_TIMESTAMP": "1", "MESSAGE": {"a": 1}}', "neither text nor bytes"),
    ],
)
def test_bad_journal_entries_are_parse_errors_naming_the_line(text, why):
    with pytest.raises(ParseError, match=why) as error:
        parse_journal_line(text, location="journal.json:3")
    assert str(error.value).startswith("journal.json:3: ")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_syslog_line_or_a_parse_error(text):
    with contextlib.suppress(ParseError):
        parse_syslog_line(text, written=WRITTEN, location="x:1")


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=10,
    ),
    st.integers(min_value=-5, max_value=10**20),
)
def test_any_json_is_a_journal_entry_or_a_parse_error(value, stamp):
    entry = {"__REALTIME_TIMESTAMP": str(stamp), "MESSAGE": value}
    for document in (json.dumps(value), json.dumps(entry)):
        with contextlib.suppress(ParseError):
            parse_journal_line(document, location="x:1")
