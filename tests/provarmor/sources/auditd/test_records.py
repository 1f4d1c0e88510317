from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.errors import ParseError
from provarmor.sources.auditd.records import (
    WANTED_TYPES,
    RecordParser,
    decode_proctitle,
    decode_string,
    parse_audit_line,
    parse_netlink_record,
    parse_stamp,
    record_type_name,
)


def _lines(path):
    # not str.splitlines(): it also splits at 0x1d, the ENRICHED separator
    return [line for line in path.read_text().split("\n") if line]


def _line(path, number):
    return path.read_text().split("\n")[number - 1]


def test_parses_an_enriched_execve_syscall_record(auditd_data):
    record = parse_audit_line(_line(auditd_data / "pipeline.log", 5), source="p.log", line=5)

    assert record.type == "SYSCALL"
    assert record.stamp == "1795875746.197:4104"
    assert record.timestamp == 1_795_875_746_197_000_000
    assert record.serial == 4104
    assert record.fields["syscall"] == "59"
    assert record.fields["pid"] == "11957"
    assert record.fields["comm"] == "bash"
    assert record.fields["exe"] == "/usr/bin/bash"
    assert record.fields["key"] == "provarmor_exec"
    assert record.enriched.startswith("ARCH=x86_64 SYSCALL=execve")
    assert 'EUID="root"' in record.enriched
    assert record.line == 5


def test_raw_format_record_has_no_enrichment(auditd_data):
    record = parse_audit_line(_line(auditd_data / "pipeline_raw.log", 5))

    assert record.fields["syscall"] == "59"
    assert record.fields["key"] == "provarmor_exec"
    assert record.enriched == ""


def test_execve_arguments_are_decoded_from_quotes_and_hex(auditd_data):
    record = parse_audit_line(_line(auditd_data / "pipeline.log", 7))

    assert record.type == "EXECVE"
    assert record.fields["argc"] == "3"
    assert record.fields["a0"] == "/usr/bin/bash"
    assert record.fields["a2"] == "cat /etc/passwd | grep root | wc -l"


def test_long_argument_chunks_stay_encoded_for_joining(auditd_data):
    record = parse_audit_line(_line(auditd_data / "long_args.log", 110))

    assert record.fields["a1_len"] == "18000"
    assert record.fields["a1[0]"].startswith("616161")


def test_proctitle_decodes_to_argv(auditd_data):
    record = parse_audit_line(_line(auditd_data / "pipeline.log", 66))

    assert record.type == "PROCTITLE"
    assert decode_proctitle(record.fields["proctitle"]) == ("cat", "/etc/passwd")


def test_unset_key_decodes_to_empty(auditd_data):
    record = parse_audit_line(_line(auditd_data / "pipeline.log", 3))

    assert record.fields["key"] == ""
    assert record.fields["comm"] == "sh"


def test_node_prefix_is_accepted(auditd_data):
    line = _line(auditd_data / "pipeline.log", 5)

    record = parse_audit_line("node=vm1 " + line)

    assert record.type == "SYSCALL"
    assert record.fields["pid"] == "11957"


def test_netlink_text_parses_like_the_log_line(auditd_data):
    first = json.loads((auditd_data / "attack_chain.netlink.jsonl").read_text().split("\n")[1])

    record = parse_netlink_record(first["type"], first["text"])

    assert first["type"] == 1300
    assert record.type == "SYSCALL"
    assert record.stamp == "1795875758.873:4640"
    assert record.fields["pid"] == "12477"
    assert record.fields["comm"] == "sh"


def test_netlink_type_names():
    assert record_type_name(1300) == "SYSCALL"
    assert record_type_name(1320) == "EOE"
    assert record_type_name(1327) == "PROCTITLE"
    assert record_type_name(9999) == "UNKNOWN[9999]"
    assert record_type_name("PATH") == "PATH"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"bash"', "bash"),
        ("2F746D702F6120622063", "/tmp/a b c"),
        ("(null)", ""),
        ("666F6FFF", "foo\\xff"),
    ],
)
def test_decode_string(value, expected):
    assert decode_string(value) == expected


@pytest.mark.parametrize("value", ['"unterminated', "XYZ", "abc", '"'])
def test_decode_string_rejects_bad_values(value):
    with pytest.raises(ParseError):
        decode_string(value)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "type=SYSCALL",
        "type=SYSCALL msg=audit(1795875746.197:4104",
        "type=SYSCALL msg=audit(17958x5746.197:4104): pid=1",
        "type=SYSCALL msg=audit(1795875746.197:): pid=1",
        "msg=audit(1795875746.197:1): pid=1",
        'type=SYSCALL msg=audit(1795875746.197:1): comm="unterminated',
        "type=SYSCALL msg=audit(1795875746.197:1): comm=ZZ",
        "type=SYSCALL msg=audit(1795875746.197:1): novalue pid=1",
        "type=SYSCALL msg=audit(1795875746.197:1): " + "a" * 300_000,
    ],
)
def test_malformed_lines_raise_parse_error_with_location(line):
    with pytest.raises(ParseError) as info:
        parse_audit_line(line, source="audit.log", line=7)
    assert info.value.location == "audit.log:7"


def test_parse_stamp_rejects_non_digits():
    assert parse_stamp("1.5:3") == (1_500_000_000, 3)
    with pytest.raises(ParseError):
        parse_stamp("-1.000:3")


def test_a_stamp_past_2262_is_a_parse_error_naming_the_line():
    assert parse_stamp("9223372036.854775807:1") == (2**63 - 1, 1)
    for stamp in ("9223372036.854775808:1", "999999999999.000:1"):
        with pytest.raises(ParseError, match="past the year 2262") as caught:
            parse_stamp(stamp, source="audit.log", line=3)
        assert caught.value.location == "audit.log:3"


def test_cached_parser_agrees_with_the_plain_parser(auditd_data):
    parser = RecordParser()
    for name in ("pipeline.log", "attack_chain.log", "long_args.log", "file_ops.log"):
        for number, line in enumerate(_lines(auditd_data / name), 1):
            plain = parse_audit_line(line, line=number)
            fast = parser.parse_line(line, line=number)
            assert fast.type == plain.type
            assert fast.stamp == plain.stamp
            if plain.type in WANTED_TYPES:
                assert fast.fields == plain.fields, (name, number)
                assert fast.enriched == plain.enriched


def test_cached_parser_leaves_unwanted_records_unparsed(auditd_data):
    record = RecordParser().parse_line(_line(auditd_data / "pipeline.log", 6))

    assert record.type == "BPRM_FCAPS"
    assert record.fields == {}


_audit_alphabet = st.sampled_from(
    list('type=SYSCALLmsg=audit(1795875746.197:4104): "\x1d\x00 ab=cd')
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.lists(_audit_alphabet, max_size=120).map("".join))
def test_garbage_only_ever_raises_parse_error(text):
    for parse in (parse_audit_line, RecordParser().parse_line):
        try:
            record = parse(text, line=1)
        except ParseError:
            continue
        assert isinstance(record.fields, dict)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.text(max_size=200))
def test_netlink_garbage_only_ever_raises_parse_error(kind, text):
    with contextlib.suppress(ParseError):
        parse_netlink_record(kind, text)
