from provarmor.model.event import Endpoint, User
from provarmor.sources.cdm.definitions import apply_definition, endpoint
from provarmor.sources.cdm.entities import CdmLimits, CdmState
from provarmor.sources.cdm.records import parse_cdm_line


def apply_lines(data_dir, name: str, numbers: list[int]) -> CdmState:
    lines = (data_dir / "cdm" / name).read_bytes().splitlines()
    state = CdmState(CdmLimits())
    for number in numbers:
        _, record = parse_cdm_line(lines[number - 1], location=f"{name}:{number}")
        assert record is not None
        apply_definition(record, state)
    return state


def test_cadets_subject_gets_pid_parent_start_and_principal(data_dir):
    state = apply_lines(data_dir, "cadets_cp.cdm.json", [1, 3, 4, 9])
    child = state.subjects.get("4aca7f92-11b4-11e8-afe7-44a8421f8dc6")
    assert child is not None
    assert child.pid == 23372
    assert child.parent == "4fba7bdc-11b2-11e8-afe7-44a8421f8dc6"
    assert child.start == 1518632668136429138
    assert child.user == User(id="8317", name="amanda")
    assert state.host_names["4c4c4544-0036-5810-8044-b5c04f533532"] == (
        "blackmarsh3.musec.engr.mun.ca"
    )


def test_theia_file_object_path_comes_from_filename_property(data_dir):
    state = apply_lines(data_dir, "theia_head120.cdm.json", [70])
    (info,) = [state.objects.get("0100d00f-c0ba-0000-0000-0000843b393a")]
    assert info is not None
    assert (info.kind, info.path, info.file_type) == ("file", "/bin/ls", "file")


def test_theia_self_parented_root_subject_has_no_parent(data_dir):
    state = apply_lines(data_dir, "theia_head120.cdm.json", [5])
    root = state.subjects.get("00000000-0000-0000-0000-000000000000")
    assert root is not None and root.parent == ""


def test_endpoints_from_cdm_addresses():
    assert endpoint("192.168.1.1", 53) == Endpoint(ip="192.168.1.1", port=53)
    assert endpoint("localhost", -1) == Endpoint(address="localhost")
    assert endpoint("NETLINK", 1400) == Endpoint(address="NETLINK", port=1400)
    assert endpoint("fe80::46a8:42ff:fe1f:8dc6%bge0", 0) == Endpoint(
        ip="fe80::46a8:42ff:fe1f:8dc6%bge0"
    )
    assert endpoint("NA", 0) is None
    assert endpoint(None, None) is None
    assert endpoint("1.2.3.4", 99999) == Endpoint(ip="1.2.3.4")
