import gzip
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.cdm import CdmLimits, read_cdm

HOST = HostContext(id="ctx-host", boot_id="boot-7")
CADETS_HOST = "4c4c4544-0036-5810-8044-b5c04f533532"
BASH = "4fba7bdc-11b2-11e8-afe7-44a8421f8dc6"
CP = "4aca7f92-11b4-11e8-afe7-44a8421f8dc6"


def load(path: Path, **kwargs) -> tuple[list[Event], IngestReport]:
    report = IngestReport(source=str(path))
    return list(read_cdm(path, report=report, host=HOST, **kwargs)), report


def actions(events: list[Event]) -> dict[str, int]:
    return dict(Counter(event.event.action.value for event in events))


def accounted(report: IngestReport) -> int:
    """Every record is an event, a reject or one skip reason (evictions are not records)."""
    skipped = sum(report.skipped.values()) - report.skipped["evicted_entity"]
    return report.events + report.rejected + skipped


@pytest.fixture
def cadets_cp(data_dir: Path) -> Path:
    return data_dir / "cdm" / "cadets_cp.cdm.json"


@pytest.fixture
def theia_head(data_dir: Path) -> Path:
    return data_dir / "cdm" / "theia_head120.cdm.json"


def test_cadets_cp_excerpt_counts_every_record(cadets_cp):
    events, report = load(cadets_cp)
    assert (report.records, report.events, report.rejected) == (45, 20, 0)
    assert actions(events) == {
        "read": 7,
        "write": 5,
        "open": 5,
        "fork": 1,
        "mmap_exec": 1,
        "exit": 1,
    }
    assert report.skipped == Counter(
        {
            "definition:FileObject": 6,
            "close": 5,
            "mmap_not_exec": 5,
            "flows_to": 3,
            "definition:Subject": 2,
            "unmapped:EVENT_MODIFY_PROCESS": 2,
            "definition:Host": 1,
            "definition:Principal": 1,
        }
    )
    assert accounted(report) == report.records


def test_cadets_fork_makes_the_child_the_process(cadets_cp):
    events, _ = load(cadets_cp)
    (fork,) = [e for e in events if e.event.action is Action.FORK]
    assert fork.process.entity_id == CP
    assert fork.process.pid == 23372
    assert fork.process.start == 1518632668136429138
    assert fork.process.name == "bash"  # the child still runs its parent's program
    assert fork.process.parent is not None
    assert (fork.process.parent.entity_id, fork.process.parent.pid) == (BASH, 23311)
    assert fork.process.user is not None
    assert (fork.process.user.id, fork.process.user.name) == ("8317", "amanda")


def test_cadets_cp_reads_one_dotfile_and_writes_the_copy(cadets_cp):
    events, _ = load(cadets_cp)
    by_cp = [e for e in events if e.process.entity_id == CP and e.event.action is not Action.FORK]
    assert {e.process.name for e in by_cp} == {"cp"}
    opened = [e.file.path for e in by_cp if e.event.action is Action.OPEN and e.file]
    assert opened == [
        "/etc/libmap.conf",
        "/var/run/ld-elf.so.hints",
        "/lib/libc.so.7",
        "/home/amanda/.bashrc",
        "/home/amanda/bashrc",
    ]
    (write,) = [e for e in by_cp if e.event.action is Action.WRITE]
    assert write.file is not None and write.file.path == "/home/amanda/bashrc"
    (mapped,) = [e for e in by_cp if e.event.action is Action.MMAP_EXEC]
    assert mapped.file is not None and mapped.file.path == "/lib/libc.so.7"  # PROT_EXEC only


def test_cadets_events_carry_host_record_and_log_reference(cadets_cp):
    events, _ = load(cadets_cp)
    first = events[0]
    assert first.host.id == CADETS_HOST
    assert first.host.name == "blackmarsh3.musec.engr.mun.ca"
    assert first.host.boot_id == "boot-7"
    assert first.event.dataset == "cdm"
    assert first.log is not None
    assert (first.log.line, first.log.record) == (5, "7a90fe63-9267-51dd-a8b7-65263344f8de")
    assert first.log.file == str(cadets_cp)
    assert first.timestamp == 1518632667921553570


def test_theia_excerpt_decodes_binary_uuids_and_microsecond_clock(theia_head):
    events, report = load(theia_head)
    assert (report.records, report.events, report.rejected) == (120, 12, 0)
    assert actions(events) == {"open": 6, "read": 4, "fork": 1, "exec": 1}
    (execve,) = [e for e in events if e.event.action is Action.EXEC]
    assert execve.process.entity_id == "35085200-0000-0000-0000-000000000020"
    assert execve.process.pid == 2101  # Subject cid is 0: THEIA's threadId is the task pid
    assert execve.process.executable == "/bin/ls"
    assert execve.process.args == ("ls", "--color=auto", "-alF", "/data/")
    assert execve.file is not None and execve.file.path == "/bin/ls"
    assert execve.timestamp == 1515799697381449000
    assert execve.host.id == "c0a87a06-5254-00e4-7358-000000000070"
    (fork,) = [e for e in events if e.event.action is Action.FORK]
    assert fork.process.entity_id == execve.process.entity_id  # exec keeps the identity
    assert fork.process.parent is not None and fork.process.parent.pid == 1662


def test_gzip_and_plain_give_the_same_events(cadets_cp, tmp_path):
    packed = tmp_path / "cp.cdm.json.gz"
    packed.write_bytes(gzip.compress(cadets_cp.read_bytes()))
    unzipped = [replace(e, log=None) for e in load(packed)[0]]
    assert unzipped == [replace(e, log=None) for e in load(cadets_cp)[0]]


def test_bad_lines_are_rejected_with_location_and_good_ones_kept(cadets_cp, tmp_path):
    lines = cadets_cp.read_bytes().splitlines()
    broken = tmp_path / "broken.cdm.json"
    damaged = [b'{"datum": {"Event": {"uuid": 5}}}', lines[20][:100], b"[1, 2]", b"\xff\xfe"]
    broken.write_bytes(b"\n".join(lines[:10] + damaged + lines[10:]) + b"\n")
    events, report = load(broken)
    assert report.rejected == 4
    assert report.errors[0].startswith(f"{broken}:11: bad CDM Event record")
    assert [e.event.id for e in events] == [e.event.id for e in load(cadets_cp)[0]]
    assert accounted(report) == report.records == 49


def test_tiny_tables_evict_and_count_but_still_emit(cadets_cp):
    events, report = load(cadets_cp, limits=CdmLimits(subjects=1, objects=1, principals=1))
    assert report.skipped["evicted_entity"] > 0
    assert report.events == len(events) == 20
    evicted_parent = [e for e in events if e.process.entity_id == CP and e.process.parent]
    assert evicted_parent  # the child is kept; what it lost is only the parent's details


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_garbage_bytes_only_produce_parse_errors(tmp_path, chunks):
    path = tmp_path / "garbage.cdm.json"
    path.write_bytes(b"\n".join(chunks))
    events, report = load(path)
    assert report.records == report.rejected + sum(report.skipped.values()) + len(events)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=6,
)
record_types = st.sampled_from(
    ["Event", "Subject", "FileObject", "NetFlowObject", "Principal", "Host", "UnnamedPipeObject"]
)
event_types = st.sampled_from(["EVENT_READ", "EVENT_FORK", "EVENT_EXECUTE", "EVENT_CONNECT", "X"])


field_names = st.sampled_from(
    [
        "uuid",
        "type",
        "cid",
        "subject",
        "predicateObject",
        "predicateObjectPath",
        "predicateObject2",
        "timestampNanos",
        "size",
        "properties",
        "parentSubject",
        "localAddress",
        "remotePort",
        "baseObject",
        "cmdLine",
    ]
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(record_types, event_types, st.dictionaries(field_names, json_values, max_size=6)),
        max_size=8,
    )
)
def test_well_formed_json_of_any_shape_never_raises(tmp_path, records):
    import json

    lines = []
    for kind, event_type, body in records:
        body = dict(body)
        body.setdefault("uuid", "u")
        if kind == "Event":
            body.setdefault("type", event_type)
            body.setdefault("subject", {"UUID": "s"})
        lines.append(json.dumps({"datum": {kind: body}}))
    path = tmp_path / "shapes.cdm.json"
    path.write_text("\n".join(lines))
    _, report = load(path)
    assert report.records == len(lines)
    assert accounted(report) == report.records


@pytest.mark.shared
def test_shared_cadets_cp_matches_the_excerpt(shared_data, cadets_cp):
    path = shared_data / "darpa-tc" / "cadets" / "cp" / "cdm" / "cp.cdm.json"
    events, report = load(path)
    assert (report.records, report.events) == (45, 20)
    assert [e.event.id for e in events] == [e.event.id for e in load(cadets_cp)[0]]


@pytest.mark.shared
def test_shared_cadets_wget_exec_and_connections(shared_data):
    path = shared_data / "darpa-tc" / "cadets" / "wget" / "cdm" / "wget.cdm.json"
    events, report = load(path)
    assert (report.records, report.events, report.rejected) == (288, 121, 0)
    assert actions(events) == {
        "open": 41,
        "write": 39,
        "recv": 21,
        "read": 12,
        "connect": 3,
        "send": 3,
        "exec": 1,
        "exit": 1,
    }
    (execve,) = [e for e in events if e.event.action is Action.EXEC]
    assert execve.process.executable == "/usr/local/bin/wget"
    assert execve.process.args == ("wget", "www.mta.ro")
    assert execve.process.name == "wget"
    connects = [e for e in events if e.event.action is Action.CONNECT]
    peers = [(e.destination.ip, e.destination.port) for e in connects if e.destination]
    assert peers == [("192.168.1.1", 53), ("192.168.1.1", 53), ("213.177.4.168", 80)]
    web = connects[-1]
    assert web.source is not None and (web.source.ip, web.source.port) == ("192.168.1.102", 31644)
    assert web.network is not None and web.network.direction == "egress"
    assert {e.process.entity_id for e in events} == {"1f8f7cb2-ce07-11e7-929d-44a8421f8dc6"}


@pytest.mark.shared
def test_shared_theia_trace_counts_and_programs(shared_data):
    path = shared_data / "darpa-tc" / "theia-cdm18" / "cdm-18" / "traces" / "trace.json"
    events, report = load(path)
    assert (report.records, report.events, report.rejected) == (2221, 735, 0)
    assert actions(events) == {
        "open": 317,
        "read": 195,
        "recv": 78,
        "fork": 55,
        "write": 46,
        "exec": 19,
        "send": 17,
        "connect": 7,
        "delete": 1,
    }
    execs = {
        e.process.executable: e.process.command_line
        for e in events
        if e.event.action is Action.EXEC
    }
    assert execs["/usr/bin/wget"] == "wget http://www.google.com/index.html"
    assert execs["/bin/dash"] == "sh -c wget http://www.google.com/index.html"
    assert execs["/home/theia/tests/ripe_unit_tests/run.sh"] == "/bin/sh ./run.sh"
    web = [e.destination for e in events if e.event.action is Action.CONNECT and e.destination]
    assert ("173.194.219.106", 80) in {(d.ip, d.port) for d in web}
    (delete,) = [e for e in events if e.event.action is Action.DELETE]
    assert delete.file is not None
    assert delete.file.path == "/home/theia/tests/ripe_unit_tests/temp.out"
    assert report.skipped["mmap_prot_unknown"] == 400  # THEIA gives no protection flags
    assert accounted(report) == report.records


@pytest.mark.shared
def test_shared_cadets_git_files_import_without_rejects(shared_data):
    for name in ("git_clone", "git_pull", "git_push"):
        path = shared_data / "darpa-tc" / "cadets" / "git" / "cdm" / f"{name}.cdm.json"
        events, report = load(path)
        assert report.rejected == 0
        assert accounted(report) == report.records
        renames = [e for e in events if e.event.action is Action.RENAME]
        assert all(e.file and e.file.original_path and e.file.path for e in renames)
