"""The bpftrace line protocol: escaping, record layouts and bpftrace's own messages."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.errors import ParseError
from provarmor.sources.ebpf import wire


def bpftrace_escape(data: bytes) -> bytes:
    """What bpftrace 0.17's JSON output does to a string (observed with all 255 bytes; see
    tests/data/ebpf/scenario.ndjson): bytes >= 0x80 become a sign-extended \\uffffffXX."""
    named = {0x22: b'\\"', 0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}
    out = bytearray()
    for byte in data:
        if byte in named:
            out += named[byte]
        elif byte < 0x20:
            out += b"\\u%04x" % byte
        elif byte >= 0x80:
            out += b"\\uffffff%02x" % byte
        else:
            out.append(byte)
    return bytes(out)


def printf_line(text: bytes) -> bytes:
    return b'{"type": "printf", "data": "' + bpftrace_escape(text) + b'"}'


@settings(max_examples=500)
@given(st.binary(max_size=300).filter(lambda data: b"\0" not in data))
def test_unescape_restores_every_byte(data: bytes) -> None:
    assert wire.unescape(bpftrace_escape(data)) == data.decode("utf-8", "backslashreplace")


def test_unescape_of_the_strings_seen_in_the_capture() -> None:
    assert wire.unescape(b"a\\tb") == "a\tb"
    assert wire.unescape(b"back\\\\x41slash") == "back\\x41slash"
    assert wire.unescape(b"\\uffffffc3\\uffffffa9") == "\u00e9"
    assert wire.unescape(b"\\uffffffff\\u0001") == "\\xff\x01"


@pytest.mark.parametrize("raw", [b"ab\\", b"\\q", b"\\u12", b"\\uffff0041"])
def test_malformed_escapes_are_parse_errors(raw: bytes) -> None:
    with pytest.raises(ParseError):
        wire.unescape(raw)


def test_header_fields_and_a_trailing_string_with_tabs() -> None:
    line = printf_line(b"O\t10\t20\t21\t30\t3\t-100\t577\t1048576\t/tmp/a\tb\n")
    parsed = wire.parse_line(line, location="x:1")
    assert parsed == wire.Header("O", 10, 20, 21, 30, (3, -100, 577, 1048576), "/tmp/a\tb")


def test_string_part_keeps_everything_after_the_third_tab() -> None:
    parsed = wire.parse_line(printf_line(b"s\t7\t99\t\t x\ty\n"))
    assert parsed == wire.StringPart(7, 99, "\t x\ty")


@pytest.mark.parametrize(
    "text",
    [
        b"O\t1\t2\n",
        b"O\t1\t2\t3\t4\t5\t6\t7\tx\tpath\n",
        b"?\t1\n",
        b"s\t1\n",
        b"V\t1\t2\t3\t4\t5\t6\n",
    ],
)
def test_wrong_layouts_are_parse_errors(text: bytes) -> None:
    with pytest.raises(ParseError) as error:
        wire.parse_line(printf_line(text), location="out:9")
    assert error.value.location == "out:9"


def test_lost_events_message() -> None:
    assert wire.parse_line(b'{"type": "lost_events", "data": {"events": 25}}') == wire.Lost(25)
    with pytest.raises(ParseError):
        wire.parse_line(b'{"type": "lost_events", "data": {"events": -1}}')


def test_first_and_last_byte_times_of_socket_flows() -> None:
    first = wire.parse_line(b'{"type": "map", "data": {"@if1": {"4674,38675,3,1": 900}}}')
    assert first == wire.IoTimes(1, False, ((4674, 38675, 3, 1, 900),))
    last = wire.parse_line(b'{"type": "map", "data": {"@il0": {"4674,38675,3,0": 990}}}')
    assert last == wire.IoTimes(0, True, ((4674, 38675, 3, 0, 990),))
    with pytest.raises(ParseError, match="unexpected maps"):
        wire.parse_line(b'{"type": "map", "data": {"@if0": {}, "@il0": {}}}')
    with pytest.raises(ParseError, match="bad time map"):
        wire.parse_line(b'{"type": "map", "data": {"@if0": {"1,2,3,4": "x"}}}')
    with pytest.raises(ParseError, match="aggregation key"):
        wire.parse_line(b'{"type": "map", "data": {"@il1": {"1,2,3": 5}}}')


def test_socket_totals_from_both_maps() -> None:
    line = (
        b'{"type": "stats", "data": {"@io0": {"4674,3867550719533,3,0": '
        b'{"count": 3, "average": 1000, "total": 3000}}}}'
    )
    parsed = wire.parse_line(line)
    assert parsed == wire.IoTotals(((4674, 3867550719533, 3, 0, 3, 3000),))
    with pytest.raises(ParseError, match="unexpected maps"):
        wire.parse_line(b'{"type": "stats", "data": {"@io0": {}, "@x": {}}}')
    one = b'{"type": "stats", "data": {"@io1": {"1,2,3,0": {"count": 1, "total": 9}}}}'
    assert wire.parse_line(one) == wire.IoTotals(((1, 2, 3, 0, 1, 9),), 1)
    with pytest.raises(ParseError, match="bad aggregation map"):
        wire.parse_line(b'{"type": "map", "data": {"@io0": {"1,2,3,4": 5}}}')
    with pytest.raises(ParseError, match="aggregation key"):
        wire.parse_line(b'{"type": "stats", "data": {"@io1": {"1,2": {"count": 1, "total": 1}}}}')


def test_the_count_of_printed_records() -> None:
    assert wire.parse_line(b'{"type": "map", "data": {"@records": 4321}}') == wire.Emitted(4321)
    with pytest.raises(ParseError, match="not a count"):
        wire.parse_line(b'{"type": "map", "data": {"@records": "many"}}')
    assert wire.is_record(b'{"type": "printf", "data": "garbage')
    assert not wire.is_record(b'{"type": "lost_events", "data": {"events": 1}}')


def test_other_messages_and_blank_lines() -> None:
    attached = wire.parse_line(b'{"type": "attached_probes", "data": {"probes": 108}}')
    assert attached == wire.Control("attached_probes", {"probes": 108})
    # bpftrace prints the scratch maps it finds non-empty when it exits
    scratch = wire.parse_line(b'{"type": "map", "data": {"@af": {"27889": 5}}}')
    assert scratch == wire.Control("map", {"@af": {"27889": 5}})
    assert wire.parse_line(b"") == wire.Control("blank", None)
    with pytest.raises(ParseError):
        wire.parse_line(b"Lost 5 events")


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_garbage_raises_only_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        wire.parse_line(data)
    with contextlib.suppress(ParseError):
        wire.parse_line(b'{"type": "printf", "data": "' + data + b'\\n"}')
