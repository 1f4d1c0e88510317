import json
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.model.ids import process_entity_id
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.sysdig import read_sysdig

HOST = HostContext(id="rec-host", name="recorder", boot_id="boot-1")
CURL = "curl -s http://127.0.0.1:8765/hello.txt"
SERVER = "python3 -m http.server 8765 --bind 127.0.0.1 --directory www"


def load(path: Path, **kwargs) -> tuple[list[Event], IngestReport]:
    report = IngestReport(source=str(path))
    return list(read_sysdig(path, report=report, host=HOST, **kwargs)), report


def rewrite(source: Path, target: Path, change) -> Path:
    """Write ``source`` (the real recording) to ``target`` with ``change`` applied per record."""
    lines = []
    for line in source.read_text().splitlines():
        record = change(json.loads(line))
        if record is not None:
            lines.append(json.dumps(record))
    target.write_text("\n".join(lines) + "\n")
    return target


@pytest.fixture
def session(data_dir: Path) -> Path:
    return data_dir / "sysdig" / "session.sysdig.jsonl"


@pytest.fixture
def events(session) -> list[Event]:
    return load(session)[0]


def of(events: list[Event], action: Action, command_line: str | None = None) -> list[Event]:
    return [
        e
        for e in events
        if e.event.action is action and command_line in (None, e.process.command_line)
    ]


def test_every_record_is_an_event_or_a_counted_skip(session):
    events, report = load(session)
    assert (report.records, report.events, report.rejected) == (91, 86, 0)
    assert report.skipped == Counter({"thread_clone": 2, "thread_exit": 2, "chdir": 1})
    assert dict(Counter(e.event.action.value for e in events)) == {
        "read": 19,
        "exec": 10,
        "exit": 10,
        "fork": 9,
        "connect": 8,
        "write": 6,
        "send": 6,
        "open": 5,
        "recv": 5,
        "accept": 2,
        "bind": 1,
        "listen": 1,
        "chmod": 1,
        "rename": 1,
        "delete": 1,
        "kill": 1,
    }
    assert all(e.event.dataset == "sysdig" and e.host.id == "rec-host" for e in events)


def test_exec_of_curl_with_argv_and_parent_command_line(events):
    (execve,) = of(events, Action.EXEC, CURL)
    process = execve.process
    assert process.pid == 7933
    assert process.executable == "/usr/bin/curl"
    assert process.args == ("curl", "-s", "http://127.0.0.1:8765/hello.txt")
    assert process.working_directory == "/tmp/pa-rec"
    assert execve.file is not None and execve.file.path == "/usr/bin/curl"
    assert process.parent is not None
    assert (process.parent.pid, process.parent.command_line) == (7930, "session.sh")
    assert execve.timestamp == 1795875629332769939
    assert execve.log is not None and (execve.log.line, execve.log.record) == (20, "20")


def test_fork_gives_the_child_an_identity_its_exec_keeps(events):
    (fork,) = [e for e in of(events, Action.FORK) if e.process.pid == 7933]
    assert fork.process.command_line == "session.sh"  # still the parent's program
    assert fork.process.start == 1795875629331704855
    expected = process_entity_id(
        host_id="rec-host", boot_id="boot-1", pid=7933, start=fork.process.start
    )
    assert fork.process.entity_id == expected
    assert {e.process.entity_id for e in events if e.process.pid == 7933} == {expected}
    assert fork.process.parent is not None and fork.process.parent.pid == 7930


def test_loopback_connect_destination_and_failed_nscd_lookups(events):
    connects = of(events, Action.CONNECT, CURL)
    assert [(e.destination.ip, e.destination.port) for e in connects if e.destination.ip] == [
        ("127.0.0.1", 8765)
    ]
    web = connects[-1]
    assert web.event.outcome == "unknown"  # EINPROGRESS: a non-blocking connect
    assert web.network is not None and web.network.direction == "egress"
    assert web.network.transport == "tcp"
    nscd = connects[:2]
    assert [e.destination.address for e in nscd] == ["/var/run/nscd/socket"] * 2
    assert [e.event.outcome for e in nscd] == ["failure", "failure"]


def test_client_and_server_each_see_the_other_as_destination(events):
    (accept, _) = of(events, Action.ACCEPT, SERVER)
    assert (accept.destination.ip, accept.destination.port) == ("127.0.0.1", 33368)
    assert (accept.source.ip, accept.source.port) == ("127.0.0.1", 8765)
    assert accept.network.direction == "ingress"
    request = of(events, Action.SEND, CURL)[0]
    assert (request.destination.port, request.source.port) == (8765, 33368)
    assert request.network.bytes == 87
    served = of(events, Action.RECV, SERVER)[0]
    assert served.process.pid == 7931  # recorded on thread 7935 of the server
    assert (served.destination.port, served.source.port) == (33368, 8765)


def test_pipeline_writes_pipe_and_file_with_absolute_paths(events):
    (to_pipe,) = [e for e in of(events, Action.WRITE, CURL)]
    assert (to_pipe.file.path, to_pipe.file.type) == ("pipe:[13992]", "pipe")
    reads = of(events, Action.READ, "grep -c hello")
    assert {e.file.path for e in reads} == {"pipe:[13992]"}
    written = [e.file.path for e in of(events, Action.WRITE, "grep -c hello")]
    assert written == ["/tmp/pa-rec/count.txt"]


def test_cp_mv_rm_chmod_resolve_relative_paths(events):
    (copy,) = of(events, Action.WRITE, "cp got.txt copy.txt")
    assert copy.file.path == "/tmp/pa-rec/copy.txt"
    (source,) = of(events, Action.OPEN, "cp got.txt copy.txt")
    assert source.file.path == "/tmp/pa-rec/got.txt"
    (move,) = of(events, Action.RENAME)
    assert (move.file.original_path, move.file.path) == (
        "/tmp/pa-rec/copy.txt",
        "/tmp/pa-rec/moved.txt",
    )
    (remove,) = of(events, Action.DELETE)
    assert remove.file.path == "/tmp/pa-rec/moved.txt"
    (mode,) = of(events, Action.CHMOD)
    assert mode.file.path == "/tmp/pa-rec/got.txt"


def test_kill_targets_the_server_and_exits_are_not_repeated(events):
    (kill,) = of(events, Action.KILL)
    server = of(events, Action.EXEC, SERVER)[0].process
    assert kill.target.process.entity_id == server.entity_id
    exits = of(events, Action.EXIT)
    assert len({e.process.entity_id for e in exits}) == len(exits) == 10
    assert all(e.event.outcome == "success" for e in exits)


GROUND_TRUTH = {
    "is_warn": "gt-sentinel-warn",
    "label": "gt-sentinel-label",
    "is_attack": "gt-sentinel-attack",
    "malicious": "gt-sentinel-malicious",
    "tech_num": "gt-sentinel-T1105",
}


def keys_of(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in keys_of(item)}
    if isinstance(value, list):
        return {k for item in value for k in keys_of(item)}
    return set()


def test_ground_truth_fields_are_dropped_counted_and_never_passed_on(session, tmp_path):
    rows = rewrite(session, tmp_path / "rows.jsonl", lambda r: {**r, **GROUND_TRUTH})
    events, report = load(rows)
    assert report.dropped_fields == Counter(dict.fromkeys(GROUND_TRUTH, 91))
    assert len(events) == 86
    for event in events:
        text = msgspec.json.encode(event).decode()
        assert "gt-sentinel" not in text
        assert not keys_of(msgspec.to_builtins(event)) & set(GROUND_TRUTH)


def test_nodlink_shaped_rows_without_pids_are_matched_by_command_line(session, tmp_path):
    kept = {
        "evt.type",
        "evt.time",
        "evt.args",
        "proc.cmdline",
        "proc.pcmdline",
        "proc.name",
        "fd.name",
    }

    def nodlink(record):
        return {key: value for key, value in record.items() if key in kept}

    events, report = load(rewrite(session, tmp_path / "nodlink.jsonl", nodlink))
    assert report.rejected == 0
    (execve,) = of(events, Action.EXEC, CURL)
    assert execve.process.pid == 7933  # from pid=7933(curl) in evt.args
    sends = of(events, Action.SEND, CURL)
    assert sends and {e.process.entity_id for e in sends} == {execve.process.entity_id}
    assert (sends[0].destination.ip, sends[0].destination.port) == ("127.0.0.1", 8765)


def test_clock_time_strings_are_accepted(session, tmp_path):
    def clock(record):
        ns = record["evt.time"] % 86_400_000_000_000
        seconds, fraction = divmod(ns, 1_000_000_000)
        hours, rest = divmod(seconds, 3600)
        record["evt.time"] = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{fraction:09d}"
        return record

    events, report = load(rewrite(session, tmp_path / "clock.jsonl", clock))
    assert report.events == 86
    assert events[0].timestamp == 1795875628307670911 % 86_400_000_000_000


def test_bad_lines_are_rejected_and_the_rest_kept(session, tmp_path):
    lines = session.read_bytes().splitlines()
    bad = [
        b"{not json",
        b'{"evt.type": "read"}',
        b'["evt.type"]',
        b'{"evt.type": "Bad Type", "evt.time": 1}',
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines[:5] + bad + lines[5:]) + b"\n")
    _, report = load(path)
    assert (report.rejected, report.events) == (4, 86)
    assert report.errors[0].startswith(f"{path}:6: not JSON")
    assert "no usable time" in report.errors[1]


def test_tiny_process_table_counts_evictions(session):
    events, report = load(session, max_processes=2)
    assert report.skipped["evicted_process"] > 0
    assert len(events) == 86


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_garbage_bytes_only_produce_parse_errors(tmp_path, chunks):
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(b"\n".join(chunks))
    events, report = load(path)
    assert report.records == report.rejected + sum(report.skipped.values()) + len(events)


field_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=30),
    st.sampled_from(["127.0.0.1:1->10.0.0.1:80", "res=-2(ENOENT) fd=3(<f>/x) name=y", "<NA>", "0"]),
)
field_names = st.sampled_from(
    [
        "evt.args",
        "proc.pid",
        "thread.tid",
        "proc.ppid",
        "proc.cmdline",
        "proc.pcmdline",
        "fd.name",
        "fd.typechar",
        "evt.dir",
        "proc.cwd",
        "evt.rawres",
        "is_warn",
    ]
)
types = st.sampled_from(
    [
        "execve",
        "clone",
        "procexit",
        "openat",
        "read",
        "write",
        "connect",
        "accept4",
        "bind",
        "sendto",
        "unlinkat",
        "renameat2",
        "kill",
        "setuid",
        "mmap",
        "chdir",
        "memfd_create",
        "x",
    ]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(types, st.dictionaries(field_names, field_values, max_size=8)), max_size=10)
)
def test_records_of_any_field_values_never_raise(tmp_path, records):
    lines = [
        json.dumps({"evt.type": kind, "evt.time": 1795875629332769939 + i, **fields})
        for i, (kind, fields) in enumerate(records)
    ]
    path = tmp_path / "shapes.jsonl"
    path.write_text("\n".join(lines))
    events, report = load(path)
    assert report.records == len(lines)
    for event in events:
        msgspec.msgpack.encode(event)  # every value fits the binary codec
