import pytest

from provarmor.model.errors import ParseError
from provarmor.sources.sysdig.fields import parse_args, parse_sysdig_line, parse_time, to_int


def fixture_line(data_dir, number: int) -> bytes:
    return (data_dir / "sysdig" / "session.sysdig.jsonl").read_bytes().splitlines()[number - 1]


def test_real_record_fields_become_text(data_dir):
    record = parse_sysdig_line(fixture_line(data_dir, 20), location="s:20")
    assert (record.type, record.direction, record.timestamp) == ("execve", "<", 1795875629332769939)
    assert record.text("proc.cmdline") == "curl -s http://127.0.0.1:8765/hello.txt"
    assert record.number("proc.pid") == 7933
    assert record.args["pid"] == "7933(curl)"
    assert record.args["ptid"] == "7930(session.sh)"
    assert record.args["cwd"] == "/tmp/pa-rec"
    assert record.dropped == ()


def test_ground_truth_keys_are_removed_and_named():
    line = (
        b'{"evt.type": "read", "evt.time": 5, "is_warn": "True", "anomaly_socre": 0.9, "x": "<NA>"}'
    )
    record = parse_sysdig_line(line, location="n:1")
    assert record.dropped == ("anomaly_socre", "is_warn")
    assert "is_warn" not in record.fields
    assert "x" not in record.fields  # <NA> means absent


def test_args_split_on_keys_and_keep_the_first_value():
    assert parse_args("res=0 fd=3(<f>/tmp/a b) name=a b res=9") == {
        "res": "0",
        "fd": "3(<f>/tmp/a b)",
        "name": "a b",
    }
    assert parse_args("") == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1795875629332769939", 1795875629332769939),
        ("1795875629332769", 1795875629332769000),
        ("1795875629332", 1795875629332000000),
        ("1795875629", 1795875629000000000),
        ("1699123456.789", 1699123456789000000),
        ("2026-11-28T14:20:29.332769939Z", 1795875629332769939),
        ("2026-11-28 14:20:29.332769939", 1795875629332769939),
        ("2026-11-28T15:20:29.332769939+01:00", 1795875629332769939),
        ("14:20:29.332769939", 51629332769939),
        ("99999999999999999999", None),
        ("9223372036", 9223372036000000000),
        ("9999999999", None),  # past 2262: no int64 nanosecond count holds it
        ("99999999999.5", None),
        ("9999-12-31T23:59:59Z", None),
        ("25:00:00", None),
        ("yesterday", None),
    ],
)
def test_every_sysdig_time_form(text, expected):
    assert parse_time(text) == expected


def test_to_int_reads_the_leading_number():
    assert to_int("-115(EINPROGRESS)") == -115
    assert to_int("7933(curl)") == 7933
    assert to_int("<f>") is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[1]", "must be a JSON object"),
        (b"{", "not JSON"),
        (b'{"evt.time": 1}', "bad evt.type"),
        (b'{"evt.type": "read"}', "no usable time"),
        (b'{"evt.type": "read", "evt.time": "soon"}', "no usable time"),
        (b'{"evt.type": "read", "evt.time": "99999999999.5"}', "no usable time"),
    ],
)
def test_bad_records_raise_parse_error(line, message):
    with pytest.raises(ParseError, match=message) as caught:
        parse_sysdig_line(line, location="f:3")
    assert str(caught.value).startswith("f:3: ")
