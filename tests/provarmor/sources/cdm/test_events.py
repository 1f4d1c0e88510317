from provarmor.model.actions import Action
from provarmor.model.event import Host, LogRef
from provarmor.sources.cdm.definitions import apply_definition
from provarmor.sources.cdm.entities import CdmLimits, CdmState
from provarmor.sources.cdm.events import build_event
from provarmor.sources.cdm.records import EventRecord, parse_cdm_line

HOST = Host(id="h")
LOG = LogRef(file="f", line=1, record="r")


def replay(data_dir, name: str, upto: int) -> tuple[CdmState, list[object]]:
    """Feed the first ``upto`` lines of a fixture through the event builder."""
    state = CdmState(CdmLimits())
    results: list[object] = []
    for number, line in enumerate((data_dir / "cdm" / name).read_bytes().splitlines()[:upto], 1):
        _, record = parse_cdm_line(line, location=f"{name}:{number}")
        if isinstance(record, EventRecord):
            results.append(build_event(record, state=state, host=HOST, log=LOG))
        elif record is not None:
            apply_definition(record, state)
    return state, results


def test_close_and_flows_to_are_skipped_with_reasons(data_dir):
    _, results = replay(data_dir, "cadets_cp.cdm.json", 45)
    reasons = [r for r in results if isinstance(r, str)]
    assert reasons.count("close") == 5
    assert reasons.count("flows_to") == 3
    assert reasons.count("mmap_not_exec") == 5


def test_paths_learned_from_opens_name_later_mmaps(data_dir):
    state, results = replay(data_dir, "cadets_cp.cdm.json", 23)
    mapped = results[-1]
    assert not isinstance(mapped, str)
    assert mapped.event.action is Action.MMAP_EXEC
    libc = state.objects.get("f16802da-0614-6658-9406-edcd8866f480")
    assert libc is not None and libc.path == "/lib/libc.so.7"


def test_theia_munmap_and_unknown_protection_are_skipped(data_dir):
    _, results = replay(data_dir, "theia_head120.cdm.json", 120)
    reasons = [r for r in results if isinstance(r, str)]
    assert reasons.count("munmap") == 26
    assert reasons.count("mmap_prot_unknown") == 13
    assert reasons.count("mprotect_prot_unknown") == 4
    assert reasons.count("boot") == 1


def test_event_of_unknown_subject_is_still_emitted(data_dir):
    line = (data_dir / "cdm" / "cadets_cp.cdm.json").read_bytes().splitlines()[4]
    _, record = parse_cdm_line(line, location="cp:5")
    assert isinstance(record, EventRecord)
    event = build_event(record, state=CdmState(CdmLimits()), host=HOST, log=LOG)
    assert not isinstance(event, str)
    assert event.event.action is Action.READ
    assert event.process.entity_id == "4fba7bdc-11b2-11e8-afe7-44a8421f8dc6"
    assert event.process.name == "bash"
    assert event.file is not None and event.file.path == "/dev/tty"
