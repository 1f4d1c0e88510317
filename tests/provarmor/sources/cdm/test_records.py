import pytest

from provarmor.model.errors import ParseError
from provarmor.sources.cdm.records import (
    EventRecord,
    SubjectRecord,
    avro,
    avro_uuid,
    bounded,
    canonical_uuid,
    nanos,
    parse_cdm_line,
)


def fixture_line(data_dir, name: str, number: int) -> bytes:
    return (data_dir / "cdm" / name).read_bytes().splitlines()[number - 1]


def test_theia_raw_byte_uuid_becomes_dashed_hex(data_dir):
    kind, host = parse_cdm_line(fixture_line(data_dir, "theia_head120.cdm.json", 1), location="t:1")
    assert kind == "Host"
    assert canonical_uuid(host.uuid) == "c0a87a06-5254-00e4-7358-000000000070"


def test_textual_uuids_are_lowercased_and_dashed():
    assert (
        canonical_uuid("4FBA7BDC-11B2-11E8-AFE7-44A8421F8DC6")
        == "4fba7bdc-11b2-11e8-afe7-44a8421f8dc6"
    )
    assert (
        canonical_uuid("000000000000000649883dfd38c0a873") == "00000000-0000-0006-4988-3dfd38c0a873"
    )
    assert canonical_uuid("not-a-uuid") == "not-a-uuid"


def test_avro_unions_unwrap():
    assert avro({"string": "aue_read"}) == "aue_read"
    assert avro("plain") == "plain"
    assert avro(None) == ""
    assert avro({}) == ""
    assert avro_uuid({"com.bbn.tc.schema.avro.cdm18.UUID": "\x00" * 16}) == (
        "00000000-0000-0000-0000-000000000000"
    )
    assert avro_uuid(None) == ""


def test_theia_microseconds_are_scaled_and_nanoseconds_kept():
    assert nanos(1515799688913542) == 1515799688913542000  # THEIA: microseconds
    assert nanos(1518632667921553570) == 1518632667921553570  # CADETS: nanoseconds
    assert nanos(2915799713) == 2915799713  # small values are left alone
    assert nanos(-1) == 0
    assert nanos(None) == 0
    assert nanos(2**64) == 0


def test_bounded_rejects_wild_numbers():
    assert bounded(53, 65535) == 53
    assert bounded(-1, 65535) == 0
    assert bounded(70000, 65535) == 0
    assert bounded(None, 10) == 0


def test_event_and_subject_records_decode_from_cadets(data_dir):
    kind, subject = parse_cdm_line(fixture_line(data_dir, "cadets_cp.cdm.json", 9), location="c:9")
    assert kind == "Subject" and isinstance(subject, SubjectRecord)
    assert (subject.cid, subject.start_timestamp_nanos) == (23372, 1518632668136429138)
    kind, event = parse_cdm_line(fixture_line(data_dir, "cadets_cp.cdm.json", 10), location="c:10")
    assert kind == "Event" and isinstance(event, EventRecord)
    assert event.type == "EVENT_FORK"
    assert avro(event.name) == "aue_fork"
    assert event.properties is not None and event.properties.map is not None
    assert event.properties.map["arg_pid"] == "23372"


def test_memory_objects_are_recognised_but_not_decoded(data_dir):
    kind, record = parse_cdm_line(
        fixture_line(data_dir, "theia_head120.cdm.json", 12), location="t:12"
    )
    assert (kind, record) == ("MemoryObject", None)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{", "not a CDM record"),
        (b'{"datum": 3}', "not a CDM record"),
        (b'{"datum": {}}', "exactly one record"),
        (b'{"datum": {"Event": {}, "Subject": {}}}', "exactly one record"),
        (b'{"datum": {"Event": {"uuid": "u"}}}', "bad CDM Event record"),
        (b'{"datum": {"Subject": {"uuid": "u", "cid": "x"}}}', "bad CDM Subject record"),
    ],
)
def test_malformed_records_raise_parse_error_with_location(line, message):
    with pytest.raises(ParseError, match=message) as caught:
        parse_cdm_line(line, location="f.json:7")
    assert str(caught.value).startswith("f.json:7: ")
